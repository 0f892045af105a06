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
  _vmem_label_needs("${T_LABELS}" ${T_NAME})
endfunction()

# The targets a label's tests run are dependencies of `vmem_tests_<label>`: a preset that runs
# some labels builds those targets alone (CMakePresets.json, buildPresets).
function(_vmem_label_needs labels)
  foreach(label ${labels})
    if(NOT TARGET vmem_tests_${label})
      add_custom_target(vmem_tests_${label})
    endif()
    if(ARGN)
      add_dependencies(vmem_tests_${label} ${ARGN})
    endif()
  endforeach()
endfunction()

# vmem_add_script_test(NAME <name> LABELS <labels...> [TIMEOUT <s>] [PROCESSORS <n>]
#                      COMMAND <args...>)
# A test that runs a script or a program of the build. The targets it runs, named in COMMAND as
# the program or as $<TARGET_FILE:t>, join `vmem_tests_<label>` for each of its labels.
function(vmem_add_script_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT;PROCESSORS" "LABELS;COMMAND" ${ARGN})
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
  if(T_PROCESSORS)
    set_tests_properties(${T_NAME} PROPERTIES PROCESSORS ${T_PROCESSORS})
  endif()
  set(needs)
  list(GET T_COMMAND 0 program)
  if(TARGET ${program})
    list(APPEND needs ${program})
  endif()
  string(REGEX MATCHALL "\\$<TARGET_FILE:[^>]+>" files "${T_COMMAND}")
  foreach(f ${files})
    string(REGEX REPLACE "^\\$<TARGET_FILE:([^>]+)>$" "\\1" t "${f}")
    list(APPEND needs ${t})
  endforeach()
  _vmem_label_needs("${T_LABELS}" ${needs})
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
