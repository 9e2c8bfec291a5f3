# Wire protocol decoder/encoder (proto/proto.c).
um_unit_test(test_proto SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_proto.c LIBS um_proto)
# The one SEQPACKET + SCM_RIGHTS transport (proto/transport.c).
um_unit_test(test_transport SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_transport.c LIBS um_proto)
