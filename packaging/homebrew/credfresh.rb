# Homebrew formula for credfresh. Builds from source with cargo; installs both programs, the man
# page, shell completions and the launchd agent (`brew services start credfresh`).
class Credfresh < Formula
  desc "Keep temporary AWS credentials fresh in ~/.aws/credentials"
  homepage "https://github.com/credfresh/credfresh"
  # Placeholders: set both for each release (the tag's tarball and its `shasum -a 256`).
  url "https://github.com/credfresh/credfresh/archive/refs/tags/v0.1.0.tar.gz"
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  license any_of: ["MIT", "Apache-2.0"]
  head "https://github.com/credfresh/credfresh.git", branch: "main"

  depends_on "rust" => :build

  def install
    system "cargo", "install", *std_cargo_args
    generate_completions_from_executable(bin/"credfresh", "completions")
    (man1/"credfresh.1").write Utils.safe_popen_read(bin/"credfresh", "man")
    pkgshare.install "config.example.toml"
  end

  service do
    run [opt_bin/"credfresh", "daemon"]
    keep_alive successful_exit: false
    log_path var/"log/credfresh.log"
    error_log_path var/"log/credfresh.log"
  end

  test do
    assert_match version.to_s, shell_output("#{bin}/credfresh --version")
    (testpath/"config.toml").write ""
    assert_match "config ok", shell_output("#{bin}/credfresh --config #{testpath}/config.toml validate")
  end
end
