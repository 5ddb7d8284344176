#include "core/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "core/filesystem.h"
#include "gtest/gtest.h"
#include "testing/fake_process_launcher.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

constexpr char kPython[] = "/usr/bin/python3";

std::string ReadLog(const std::string& path) {
  auto contents = LocalFilesystem()->ReadFile(path);
  EXPECT_TRUE(contents.ok()) << contents.status();
  return contents.ok() ? *contents : "";
}

ProcessSpec Shell(const TempDir& dir, const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.env = {{"PATH", "/usr/bin:/bin"}};
  spec.working_dir = dir.path();
  spec.log_path = JoinPath(dir.path(), "log.txt");
  return spec;
}

// Every child was reaped: the test process has none left.
void ExpectNoChildren() {
  errno = 0;
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

// Waits (up to 3 s) for an unrelated process to exit, on a pidfd rather than
// by sleeping. True when it is gone.
bool ProcessExits(pid_t pid) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd pfd{fd, POLLIN, 0};
  int ready = poll(&pfd, 1, 3000);
  close(fd);
  return ready == 1;
}

pid_t ReadPid(const std::string& path) {
  std::string text = ReadLog(path);
  return static_cast<pid_t>(atoi(text.c_str()));
}

TEST(ProcessTest, PropagatesExitCode) {
  TempDir dir;
  auto r = LocalProcessLauncher()->Run(Shell(dir, "exit 3"), nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->signal, 0);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->Describe(), "exited with code 3");
  ExpectNoChildren();

  r = LocalProcessLauncher()->Run(Shell(dir, "true"), nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->ok());
  EXPECT_GT(r->wall_micros, 0);
}

TEST(ProcessTest, ReportsTheKillingSignal) {
  TempDir dir;
  auto r = LocalProcessLauncher()->Run(Shell(dir, "kill -SEGV $$"), nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, -1);
  EXPECT_EQ(r->signal, SIGSEGV);
  EXPECT_FALSE(r->memory_exceeded);  // No memory limit was set.
  EXPECT_EQ(r->Describe(), "killed by signal SIGSEGV");
}

TEST(ProcessTest, AppendsStdoutAndStderrInOrder) {
  TempDir dir;
  ProcessSpec spec = Shell(dir, "echo one; echo two >&2; echo three");
  ASSERT_TRUE(LocalFilesystem()->WriteFileAtomic(spec.log_path, "before\n").ok());
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadLog(spec.log_path), "before\none\ntwo\nthree\n");
}

TEST(ProcessTest, StdinIsDevNull) {
  TempDir dir;
  ProcessSpec spec = Shell(dir, "cat; readlink /proc/self/fd/0");
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadLog(spec.log_path), "/dev/null\n");
}

TEST(ProcessTest, PassesExactlyTheGivenEnvironment) {
  TempDir dir;
  setenv("SLIPWAY_PROCESS_TEST_PARENT_ONLY", "leak", 1);
  ProcessSpec spec;
  spec.argv = {"/usr/bin/env"};
  spec.env = {{"A", "1"}, {"B", "two words"}};
  spec.log_path = JoinPath(dir.path(), "env.txt");
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  unsetenv("SLIPWAY_PROCESS_TEST_PARENT_ONLY");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(ReadLog(spec.log_path), "A=1\nB=two words\n");
}

TEST(ProcessTest, RunsInTheWorkingDirectory) {
  TempDir dir;
  std::string sub = JoinPath(dir.path(), "work");
  ASSERT_TRUE(LocalFilesystem()->CreateDirs(sub).ok());
  ProcessSpec spec = Shell(dir, "pwd -P");
  spec.working_dir = sub;
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  char* real = realpath(sub.c_str(), nullptr);
  ASSERT_NE(real, nullptr);
  EXPECT_EQ(ReadLog(spec.log_path), std::string(real) + "\n");
  free(real);
}

TEST(ProcessTest, FindsBareProgramNamesOnTheGivenPath) {
  TempDir dir;
  ProcessSpec spec = Shell(dir, "");
  spec.argv = {"sh", "-c", "echo found"};
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadLog(spec.log_path), "found\n");
}

TEST(ProcessTest, MissingProgramIsAnErrorNamingIt) {
  TempDir dir;
  ProcessSpec spec = Shell(dir, "");
  spec.argv = {"no-such-program-slipway"};
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(r.status().message()).find("no-such-program-slipway"),
            std::string::npos)
      << r.status();

  // A path is not searched; execve's ENOENT comes back through the pipe.
  spec.argv = {"/nonexistent/train.py"};
  r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(r.status().message()).find("/nonexistent/train.py"),
            std::string::npos)
      << r.status();
  ExpectNoChildren();
}

TEST(ProcessTest, NonExecutableProgramIsPermissionDenied) {
  TempDir dir;
  std::string script = JoinPath(dir.path(), "step.sh");
  ASSERT_TRUE(LocalFilesystem()->WriteFileAtomic(script, "echo hi\n").ok());
  ProcessSpec spec = Shell(dir, "");
  spec.argv = {script};
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(std::string(r.status().message()).find("chmod +x"),
            std::string::npos)
      << r.status();
}

TEST(ProcessTest, MissingWorkingDirectoryIsAnError) {
  TempDir dir;
  ProcessSpec spec = Shell(dir, "true");
  spec.working_dir = JoinPath(dir.path(), "absent");
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(r.status().message()).find("absent"),
            std::string::npos);
}

TEST(ProcessTest, RejectsAnEmptyArgv) {
  auto r = LocalProcessLauncher()->Run(ProcessSpec{}, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ProcessTest, LeaksNoDescriptorBeyondTheStandardThree) {
  TempDir dir;
  // Opened without O_CLOEXEC, as a careless library in the host might.
  int careless = open("/dev/null", O_RDONLY);
  ASSERT_GE(careless, 3);
  ProcessSpec spec = Shell(dir, "");
  // The listing itself holds one descriptor (3) while it reads.
  spec.argv = {kPython, "-c",
               "import os; print(sorted(int(f) for f in "
               "os.listdir('/proc/self/fd')))"};
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  close(careless);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadLog(spec.log_path), "[0, 1, 2, 3]\n");
}

TEST(ProcessTest, TimeoutKillsTheWholeGroup) {
  TempDir dir;
  std::string pid_file = JoinPath(dir.path(), "grandchild.pid");
  ProcessSpec spec =
      Shell(dir, "sleep 30 & echo $! > " + pid_file + "; wait");
  spec.timeout_ms = 1000;
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->cancelled);
  EXPECT_EQ(r->signal, SIGTERM);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->Describe(), "killed after the 1 s timeout");
  EXPECT_GE(r->wall_micros, 1'000'000);
  EXPECT_LT(r->wall_micros, 2'500'000);
  pid_t grandchild = ReadPid(pid_file);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(ProcessExits(grandchild));
  ExpectNoChildren();
}

TEST(ProcessTest, KillsAfterTheGraceWhenTermIsIgnored) {
  TempDir dir;
  std::string pid_file = JoinPath(dir.path(), "grandchild.pid");
  ProcessSpec spec = Shell(
      dir, "trap '' TERM; sleep 30 & echo $! > " + pid_file + "; wait");
  spec.timeout_ms = 500;
  spec.kill_grace_ms = 300;
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_EQ(r->Describe(), "killed after the 500 ms timeout");
  EXPECT_GE(r->wall_micros, 800'000);
  pid_t grandchild = ReadPid(pid_file);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(ProcessExits(grandchild));
}

TEST(ProcessTest, LeftoverGroupMembersDieWithTheProgram) {
  TempDir dir;
  std::string pid_file = JoinPath(dir.path(), "orphan.pid");
  ProcessSpec spec = Shell(dir, "sleep 30 & echo $! > " + pid_file);
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  pid_t orphan = ReadPid(pid_file);
  ASSERT_GT(orphan, 0);
  EXPECT_TRUE(ProcessExits(orphan));
}

TEST(ProcessTest, CancelStopsARunningProgram) {
  TempDir dir;
  std::string fifo = JoinPath(dir.path(), "ready");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::atomic<bool> cancel{false};
  std::chrono::steady_clock::time_point cancelled_at;
  // Cancels once the program says it is running, without sleeping: the
  // fifo's reader sees end-of-file when the program closes it.
  std::thread canceller([&] {
    int fd = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    pollfd pfd{fd, POLLIN, 0};
    std::string got;
    char buf[16];
    while (poll(&pfd, 1, 4000) == 1) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    EXPECT_EQ(got, "ready\n");
    cancelled_at = std::chrono::steady_clock::now();
    cancel.store(true);
  });
  ProcessSpec spec = Shell(dir, "echo ready > " + fifo + "; sleep 30");
  auto r = LocalProcessLauncher()->Run(spec, &cancel);
  auto returned_at = std::chrono::steady_clock::now();
  canceller.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->cancelled);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->Describe(), "cancelled");
  EXPECT_LT(returned_at - cancelled_at, std::chrono::milliseconds(1000));
  ExpectNoChildren();
}

TEST(ProcessTest, AlreadyCancelledDoesNotStart) {
  TempDir dir;
  std::atomic<bool> cancel{true};
  std::string marker = JoinPath(dir.path(), "started");
  auto r = LocalProcessLauncher()->Run(Shell(dir, "touch " + marker), &cancel);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->cancelled);
  EXPECT_FALSE(LocalFilesystem()->Exists(marker));
}

TEST(ProcessTest, MemoryLimitIsEnforcedAndReported) {
  TempDir dir;
  ProcessSpec spec = Shell(dir, "");
  spec.argv = {kPython, "-c", "b = bytearray(300 << 20)"};
  spec.memory_limit_bytes = 200 << 20;
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->exit_code, 0);
  EXPECT_TRUE(r->memory_exceeded) << ReadLog(spec.log_path);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->Describe(), "exceeded its 200 MiB memory limit");

  // The same program fits without the limit: the limit caused the failure.
  spec.memory_limit_bytes = 0;
  r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << ReadLog(spec.log_path);
  EXPECT_FALSE(r->memory_exceeded);
}

TEST(ProcessTest, FailureUnderALimitIsNotBlamedOnMemory) {
  TempDir dir;
  ProcessSpec spec = Shell(dir, "echo 'bad input' >&2; exit 2");
  spec.memory_limit_bytes = 200 << 20;
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_FALSE(r->memory_exceeded);
}

TEST(ProcessTest, ReportsCpuTime) {
  TempDir dir;
  ProcessSpec spec = Shell(dir, "");
  spec.argv = {kPython, "-c", "sum(range(3 * 10**7))"};
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_GT(r->cpu_user_micros, 50'000);
  EXPECT_GE(r->cpu_system_micros, 0);
}

TEST(ProcessTest, ReportsPeakResidentSize) {
  TempDir dir;
  ProcessSpec spec = Shell(dir, "");
  // Repetition writes every byte, so all 100 MiB become resident.
  spec.argv = {kPython, "-c", "b = b'x' * (100 << 20)"};
  auto r = LocalProcessLauncher()->Run(spec, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_GE(r->peak_rss_kb, 90 * 1024);
  EXPECT_LT(r->peak_rss_kb, 1024 * 1024);
}

TEST(ProcessResultTest, DescribesEachOutcome) {
  ProcessResult r;
  r.exit_code = 0;
  EXPECT_EQ(r.Describe(), "exited with code 0");
  r.timeout_ms = 5000;
  r.timed_out = true;
  EXPECT_EQ(r.Describe(), "killed after the 5 s timeout");
  r.timeout_ms = 1500;
  EXPECT_EQ(r.Describe(), "killed after the 1.5 s timeout");
  r.timed_out = false;
  r.memory_limit_bytes = int64_t{256} << 20;
  r.memory_exceeded = true;
  EXPECT_EQ(r.Describe(), "exceeded its 256 MiB memory limit");
  r.memory_limit_bytes = int64_t{2} << 30;
  EXPECT_EQ(r.Describe(), "exceeded its 2 GiB memory limit");
}

TEST(FakeProcessLauncherTest, ReturnsScriptedResultsAndRecordsSpecs) {
  FakeProcessLauncher fake;
  fake.AddResult(FakeProcessLauncher::Exited(0));
  fake.AddResult(absl::NotFoundError("program 'Rscript' was not found"));
  fake.AddAction([](const ProcessSpec& spec, const std::atomic<bool>*) {
    ProcessResult result = FakeProcessLauncher::Exited(7);
    result.wall_micros = static_cast<int64_t>(spec.argv.size());
    return absl::StatusOr<ProcessResult>(result);
  });

  ProcessSpec spec;
  spec.argv = {"python3", "train.py"};
  EXPECT_EQ(fake.Run(spec, nullptr)->exit_code, 0);
  EXPECT_EQ(fake.Run(spec, nullptr).status().code(),
            absl::StatusCode::kNotFound);
  auto third = fake.Run(spec, nullptr);
  EXPECT_EQ(third->exit_code, 7);
  EXPECT_EQ(third->wall_micros, 2);
  // Nothing scripted is left: an unexpected launch is an error.
  EXPECT_EQ(fake.Run(spec, nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);

  std::vector<ProcessSpec> specs = fake.specs();
  ASSERT_EQ(specs.size(), 4u);
  EXPECT_EQ(specs[0].argv[1], "train.py");
}

}  // namespace
}  // namespace slipway
