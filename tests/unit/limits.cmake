# Unit test of the daemon's per-uid limit accounting.
um_unit_test(test_limits SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_limits.c LIBS umirrord_core)
