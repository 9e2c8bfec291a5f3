# Unit tests of the daemon's pure parts (linked against umirrord_core).
um_unit_test(test_itree SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_itree.c LIBS umirrord_core)
# The invalidation state machine (inval.c) linked with the floors below it
# only (daemon/LAYERS) and a fake connection in the test: no peer.c.
um_unit_test(test_inval
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_inval.c
          ${PROJECT_SOURCE_DIR}/daemon/inval.c ${PROJECT_SOURCE_DIR}/daemon/wp.c
          ${PROJECT_SOURCE_DIR}/daemon/lookup.c ${PROJECT_SOURCE_DIR}/daemon/seq.c
          ${PROJECT_SOURCE_DIR}/daemon/vma.c ${PROJECT_SOURCE_DIR}/daemon/dirtylog.c
          ${PROJECT_SOURCE_DIR}/daemon/pagemap.c ${PROJECT_SOURCE_DIR}/daemon/itree.c
          ${PROJECT_SOURCE_DIR}/daemon/idmap.c
          ${PROJECT_SOURCE_DIR}/daemon/log.c
  LIBS PkgConfig::LIBUV um_proto um_version)
target_include_directories(test_inval PRIVATE ${PROJECT_SOURCE_DIR}/daemon)
um_unit_test(test_idmap SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_idmap.c LIBS umirrord_core)
# The pure steps of the DIRTY harvest, the snapshot's entry conversion and
# the revalidation scan's compare, each beside its module.
um_unit_test(test_dirty_merge
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_dirty_merge.c LIBS umirrord_core)
um_unit_test(test_snapshot_convert
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_snapshot_convert.c LIBS umirrord_core)
um_unit_test(test_scan_compare
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_scan_compare.c LIBS umirrord_core)
# The bounded settle of a held REMOVE (settle.c) over the same floors plus
# gone.c, with a fake connection, clock and pagemap in the test.
um_unit_test(test_settle
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_settle.c
          ${PROJECT_SOURCE_DIR}/daemon/settle.c ${PROJECT_SOURCE_DIR}/daemon/gone.c
          ${PROJECT_SOURCE_DIR}/daemon/inval.c ${PROJECT_SOURCE_DIR}/daemon/wp.c
          ${PROJECT_SOURCE_DIR}/daemon/lookup.c ${PROJECT_SOURCE_DIR}/daemon/seq.c
          ${PROJECT_SOURCE_DIR}/daemon/vma.c ${PROJECT_SOURCE_DIR}/daemon/dirtylog.c
          ${PROJECT_SOURCE_DIR}/daemon/pagemap.c ${PROJECT_SOURCE_DIR}/daemon/itree.c
          ${PROJECT_SOURCE_DIR}/daemon/idmap.c
          ${PROJECT_SOURCE_DIR}/daemon/log.c
  LIBS PkgConfig::LIBUV um_proto um_version)
target_include_directories(test_settle PRIVATE ${PROJECT_SOURCE_DIR}/daemon)
