# Helpers that keep every component's CMakeLists.txt short and uniform.

# vmem_add_test(NAME <name> LABELS <labels...> SOURCES <files...> LIBS <libs...>)
# One GoogleTest binary; every TEST becomes one ctest test carrying the labels (decisions D5).
# The binary is also a dependency of `vmem_tests_<label>` for each of its labels, so a preset that
# runs only some labels builds only their binaries (ci/test.sh: tsan runs `unit` and `stress`).
function(vmem_add_test)
  cmake_parse_arguments(T "" "NAME" "LABELS;SOURCES;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} vmem_flags GTest::gtest GTest::gtest_main
                                          GTest::gmock)
  gtest_discover_tests(${T_NAME}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT 300)
  foreach(label ${T_LABELS})
    if(NOT TARGET vmem_tests_${label})
      add_custom_target(vmem_tests_${label})
    endif()
    add_dependencies(vmem_tests_${label} ${T_NAME})
  endforeach()
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
