# umirrorctl's JSON writer, checked against the CLI tests' strict reader.
um_unit_test(test_json
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_json.c
          ${PROJECT_SOURCE_DIR}/cli/json.c
          ${PROJECT_SOURCE_DIR}/tests/cli/jparse.c)
target_include_directories(test_json PRIVATE
  ${PROJECT_SOURCE_DIR}/cli
  ${PROJECT_SOURCE_DIR}/tests/cli)
# umirrorctl's operand and option-value parsing.
um_unit_test(test_args
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_args.c
          ${PROJECT_SOURCE_DIR}/cli/args.c
          ${PROJECT_SOURCE_DIR}/cli/conn.c
  LIBS umirror)
target_include_directories(test_args PRIVATE
  ${PROJECT_SOURCE_DIR}/cli
  ${PROJECT_SOURCE_DIR}/proto)
# The page picture of show and dirty.
um_unit_test(test_grid
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_grid.c ${PROJECT_SOURCE_DIR}/cli/grid.c)
target_include_directories(test_grid PRIVATE
  ${PROJECT_SOURCE_DIR}/cli
  ${PROJECT_SOURCE_DIR}/proto)
