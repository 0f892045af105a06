# Tests of the QEMU target (label qemu: they start Debian's qemu-system-x86_64).
# line_protocol_test needs no QEMU: LineChannel, QtestBus and QmpClient against a scripted peer,
# the launcher against binaries that are not QEMU, and the command lines QemuTarget builds.
# child_process_test runs the launcher against sh, cat and sleep.
vmem_add_test(NAME line_protocol_test LABELS unit
  SOURCES target/tests/line_protocol_test.cc
  LIBS vmem_conformance)
vmem_add_test(NAME child_process_test LABELS unit
  SOURCES target/tests/child_process_test.cc
  LIBS vmem_conformance)
# qemu_target_test also replays a reproducer with conformance/replay/vmem-replay (python3).
vmem_add_test(NAME qemu_target_test LABELS qemu
  SOURCES target/tests/qemu_target_test.cc
  LIBS vmem_conformance)
target_compile_definitions(qemu_target_test PRIVATE VMEM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
