# daemon/seq.c: the seq area's slots, growth, bound and seals.
um_unit_test(test_seq SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_seq.c LIBS umirrord_core)
target_include_directories(test_seq PRIVATE ${PROJECT_SOURCE_DIR}/daemon)
