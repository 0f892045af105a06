# Helpers that keep every component's CMakeLists.txt short and uniform.

# vmem_add_test(NAME <name> LABELS <labels...> SOURCES <files...> LIBS <libs...>)
# One GoogleTest binary; every TEST becomes one ctest test carrying the labels (decisions D5).
function(vmem_add_test)
  cmake_parse_arguments(T "" "NAME" "LABELS;SOURCES;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} vmem_flags GTest::gtest GTest::gtest_main
                                          GTest::gmock)
  gtest_discover_tests(${T_NAME}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT 300)
endfunction()

# vmem_add_benchmark(NAME <name> SOURCES <files...> LIBS <libs...>)
function(vmem_add_benchmark)
  if(NOT VMEM_BUILD_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(B "" "NAME" "SOURCES;LIBS" ${ARGN})
  add_executable(${B_NAME} ${B_SOURCES})
  target_link_libraries(${B_NAME} PRIVATE ${B_LIBS} vmem_flags benchmark::benchmark)
endfunction()
