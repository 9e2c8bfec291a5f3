# Unit tests of the daemon's pure parts (linked against umirrord_core).
um_unit_test(test_itree SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_itree.c LIBS umirrord_core)
um_unit_test(test_idmap SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_idmap.c LIBS umirrord_core)
