# Warning and sanitizer flags shared by every target of the project (not by imported ones).

add_library(vmem_flags INTERFACE)
target_compile_options(vmem_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  -Wimplicit-fallthrough -Wswitch-enum -Wnon-virtual-dtor)

if(VMEM_SANITIZER STREQUAL "asan")
  set(_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
elseif(VMEM_SANITIZER STREQUAL "tsan")
  set(_san -fsanitize=thread)
  # The split ring's fences order guest-memory accesses for a driver running concurrently;
  # TSan does not model fences, and in our threaded tests the handoff goes through mutexes.
  add_compile_options(-Wno-tsan)
elseif(VMEM_SANITIZER STREQUAL "fuzz")
  # Everything gets ASan+UBSan and coverage edges; fuzz targets add -fsanitize=fuzzer themselves.
  set(_san -fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=all
           -fno-omit-frame-pointer)
  # No coverage from the oracles and the libraries (the file says why). The compiler reads the
  # list, but no build tool sees it as an input: a copy named after its hash (configure_file
  # re-runs CMake when the list changes) puts a new path on every command line, so an edit to
  # the list compiles everything again.
  set(_ignorelist ${PROJECT_SOURCE_DIR}/fuzz/coverage-ignorelist.txt)
  file(MD5 ${_ignorelist} _ignorelist_md5)
  set(_ignorelist_copy ${PROJECT_BINARY_DIR}/coverage-ignorelist-${_ignorelist_md5}.txt)
  configure_file(${_ignorelist} ${_ignorelist_copy} COPYONLY)
  add_compile_options(-fsanitize-coverage-ignorelist=${_ignorelist_copy})
elseif(VMEM_SANITIZER STREQUAL "afl")
  set(_san)
else()
  set(_san)
endif()
if(_san)
  add_compile_options(${_san})
  add_link_options(${_san})
endif()

if(VMEM_COVERAGE)
  add_compile_options(-fprofile-instr-generate -fcoverage-mapping)
  add_link_options(-fprofile-instr-generate -fcoverage-mapping)
endif()
