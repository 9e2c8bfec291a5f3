# The daemon's kernel-feature logic that needs no kernel (daemon/kfeat.c).
um_unit_test(test_kfeat SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_kfeat.c LIBS umirrord_core)
