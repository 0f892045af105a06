// Crash deduplication: which replays `vmemcheck fuzz` takes for one bug, and which for two.
#include "cli/crash_signature.h"

#include <gtest/gtest.h>

#include <string>

namespace vmem::cli {
namespace {

Exit exited(int code) {
  Exit e;
  e.code = code;
  return e;
}

Exit killed_by(int signal) {
  Exit e;
  e.code = -1;
  e.signal = signal;
  return e;
}

// An ASan report as a libFuzzer replay prints it, with the runtime's frames on top.
std::string asan_report(const std::string& address, const std::string& frame1,
                        const std::string& frame2) {
  return "INFO: Running with entropic power schedule (0xFF, 100).\n"
         "=================================================================\n"
         "==4242==ERROR: AddressSanitizer: heap-buffer-overflow on address " +
         address +
         " at pc 0x55d0c1 bp 0x7ffd sp 0x7ffc\n"
         "READ of size 8 at " +
         address +
         " thread T0\n"
         "    #0 0x55d0c1 in __asan_memcpy (/build/fuzz/ops_fuzzer+0x1234) (BuildId: ab12)\n"
         "    #1 0x55d0c2 in " +
         frame1 +
         " /work/main/reference/mem/block_bitmap.cc:120:7\n"
         "    #2 0x55d0c3 in " +
         frame2 +
         " /work/main/reference/mem/device.cc:300:3\n"
         "    #3 0x55d0c4 in vmem::exact::VirtioMemDevice::process(vmem::exact::WireRequest "
         "const&) /work/main/reference/mem/device.cc:90:10\n"
         "    #4 0x55d0c5 in LLVMFuzzerTestOneInput /work/main/fuzz/ops.cc:450:3\n"
         "    #5 0x55d0c6 in fuzzer::Fuzzer::ExecuteCallback(unsigned char const*, unsigned long) "
         "(/build/fuzz/ops_fuzzer+0x5678) (BuildId: ab12)\n"
         "\n"
         "0x602000000 is located 0 bytes to the right of 16-byte region\n"
         "allocated by thread T0 here:\n"
         "    #0 0x55d0d0 in operator new(unsigned long) (/build/fuzz/ops_fuzzer+0x9) (BuildId: "
         "ab12)\n"
         "    #1 0x55d0d1 in vmem::exact::BlockBitmap::BlockBitmap(unsigned long) "
         "/work/main/reference/mem/block_bitmap.cc:20:5\n";
}

// An overflow in BlockBitmap::set under a PLUG, at `address`.
Signature overflow_under_plug(const std::string& address) {
  return signature_of(asan_report(address, "vmem::exact::BlockBitmap::set(unsigned long)",
                                  "vmem::exact::VirtioMemDevice::plug()"),
                      exited(1));
}

TEST(CrashSignatureTest, AnOracleLineIsTheKeyWhateverItsNumbers) {
  const Signature a = signature_of(
      "ops oracle: verdict differs from the model PLUG: device NACK/0, model 1/0 at 0x1ff\n",
      exited(1));
  const Signature b = signature_of(
      "some output first\n"
      "ops oracle: verdict differs from the model PLUG: device NACK/0, model 1/0 at 0x40000\n",
      exited(1));
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.key.rfind("oracle: ops oracle: verdict differs", 0), 0u) << a.key;
  EXPECT_EQ(a.key.find("0x"), std::string::npos) << a.key;
  EXPECT_TRUE(a.reproduced);
  EXPECT_EQ(b.oracle,
            "ops oracle: verdict differs from the model PLUG: device NACK/0, model 1/0 at 0x40000");
}

TEST(CrashSignatureTest, DifferentOraclesAreDifferentCrashes) {
  const Signature a = signature_of("ops oracle: configuration differs from the model\n", exited(1));
  const Signature b = signature_of("ops oracle: invariant violated after a request\n", exited(1));
  EXPECT_NE(a.key, b.key);
}

TEST(CrashSignatureTest, ASanReportsWithTheSameTopFramesAreOneCrash) {
  const Signature a = overflow_under_plug("0x602000000010");
  const Signature b = overflow_under_plug("0x6020000000f0");
  EXPECT_EQ(a.key, b.key);
  // The kind, then the first frames that are not the runtime's, source locations dropped; the
  // allocation stack does not count.
  EXPECT_EQ(
      a.key,
      "AddressSanitizer: heap-buffer-overflow: vmem::exact::BlockBitmap::set(unsigned long) < "
      "vmem::exact::VirtioMemDevice::plug() < "
      "vmem::exact::VirtioMemDevice::process(vmem::exact::WireRequest const&)");
  EXPECT_EQ(a.headline.rfind("AddressSanitizer: heap-buffer-overflow on address", 0), 0u);
  EXPECT_TRUE(a.oracle.empty());
}

TEST(CrashSignatureTest, TheSameKindInAnotherFunctionIsAnotherCrash) {
  const Signature a = overflow_under_plug("0x602000000010");
  const Signature b =
      signature_of(asan_report("0x602000000010", "vmem::exact::BlockBitmap::clear(unsigned long)",
                               "vmem::exact::VirtioMemDevice::unplug()"),
                   exited(1));
  EXPECT_NE(a.key, b.key);
}

TEST(CrashSignatureTest, UBSanMessagesAreKeyedWithoutTheirValues) {
  const std::string report1 =
      "/work/main/reference/mem/rules.h:42:17: runtime error: shift exponent 64 is too large for "
      "64-bit type 'unsigned long'\n"
      "    #0 0x55d0c1 in vmem::exact::rules::ones_below(unsigned long) "
      "/work/main/reference/mem/rules.h:42:17\n"
      "    #1 0x55d0c2 in LLVMFuzzerTestOneInput /work/main/fuzz/virtqueue.cc:100:3\n";
  std::string report2 = report1;
  report2.replace(report2.find("exponent 64"), 11, "exponent 65");
  const Signature a = signature_of(report1, exited(1));
  const Signature b = signature_of(report2, exited(1));
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.key.rfind("runtime error: shift exponent N", 0), 0u) << a.key;
  EXPECT_NE(a.key.find("vmem::exact::rules::ones_below(unsigned long)"), std::string::npos);
}

TEST(CrashSignatureTest, WithoutAStackTheWayItEndedIsTheKey) {
  Exit timeout = killed_by(9);
  timeout.timed_out = true;
  EXPECT_EQ(signature_of("", timeout).key, "timeout (no stack)");
  EXPECT_EQ(signature_of("", killed_by(11)).key, "signal 11");
  EXPECT_EQ(signature_of("", exited(77)).key, "exit status 77");
  const Signature clean = signature_of("INFO: Done 1 runs in 0 second(s)\n", exited(0));
  EXPECT_EQ(clean.key, "does not reproduce");
  EXPECT_FALSE(clean.reproduced);
}

TEST(CrashSignatureTest, ShortHashIsStableAndEightHexDigits) {
  EXPECT_EQ(short_hash(""), "811c9dc5");  // the FNV-1a offset basis
  EXPECT_EQ(short_hash("oracle: x"), short_hash("oracle: x"));
  EXPECT_NE(short_hash("oracle: x"), short_hash("oracle: y"));
  EXPECT_EQ(short_hash("anything at all").size(), 8u);
}

}  // namespace
}  // namespace vmem::cli
