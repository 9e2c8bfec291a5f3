# libumirror: the pure entry encoding (raw UM_E_* -> caller's flags/values).
um_unit_test(test_encode
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_encode.c
          ${PROJECT_SOURCE_DIR}/libclient/encode.c
  LIBS um_proto um_version)
target_include_directories(test_encode PRIVATE
  ${PROJECT_SOURCE_DIR}/libclient
  ${PROJECT_SOURCE_DIR}/libclient/include)
