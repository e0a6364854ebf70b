# CMake generated Testfile for 
# Source directory: /work/main/tests
# Build directory: /work/main/build/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test([=[test_context]=] "/work/main/build/tests/test_context")
set_tests_properties([=[test_context]=] PROPERTIES  ENVIRONMENT "VKMIX_VALIDATION=1;VKMIX_SHARED_DIR=/work/main/../shared;VKMIX_SOURCE_DIR=/work/main;VKMIX_BINARY_DIR=/work/main/build" SKIP_RETURN_CODE "77" TIMEOUT "900" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;17;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_external_device]=] "/work/main/build/tests/test_external_device")
set_tests_properties([=[test_external_device]=] PROPERTIES  ENVIRONMENT "VKMIX_VALIDATION=1;VKMIX_SHARED_DIR=/work/main/../shared;VKMIX_SOURCE_DIR=/work/main;VKMIX_BINARY_DIR=/work/main/build" SKIP_RETURN_CODE "77" TIMEOUT "900" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;17;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_kvquant]=] "/work/main/build/tests/test_kvquant")
set_tests_properties([=[test_kvquant]=] PROPERTIES  ENVIRONMENT "VKMIX_VALIDATION=1;VKMIX_SHARED_DIR=/work/main/../shared;VKMIX_SOURCE_DIR=/work/main;VKMIX_BINARY_DIR=/work/main/build" SKIP_RETURN_CODE "77" TIMEOUT "900" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;17;add_test;/work/main/tests/CMakeLists.txt;0;")
