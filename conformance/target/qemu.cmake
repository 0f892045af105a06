# Sources of the QEMU and adapter targets, the line protocol they share, and the child-process
# launcher both use.
set(VMEM_QEMU_TARGET_SOURCES
  target/line_channel.cc
  target/qtest_bus.cc
  target/qmp_client.cc
  target/child_process.cc
  target/qemu_process.cc
  target/qemu_target.cc
  target/adapter_target.cc)
