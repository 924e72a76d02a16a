using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>What the server says when it cannot have its data directory.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DataDirectoryTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wharf-test-" + Guid.NewGuid().ToString("N"));

    public DataDirectoryTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        File.SetUnixFileMode(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task A_data_directory_on_a_read_only_file_system_is_named_as_such()
    {
        // A file system mounted read-only refuses even root (EROFS), which is what an operator meets with a read-only
        // volume. Without privileges, a new user and mount namespace may mount a tmpfs of its own: mount one on the
        // test directory, remount it read-only, and start the server on a directory inside it.
        string data = Path.Combine(_dir, "data");
        string output = await WharfServer.RunFailingStartAsync(data,
            "unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
            "mount -t tmpfs -o size=1m wharf-test \"$0\" && mkdir \"$0/data\" && mount -o remount,ro \"$0\" && exec \"$@\"",
            _dir);

        Assert.Contains("read-only or not writable", output);
        Assert.Contains("Read-only file system", output);
        Assert.DoesNotContain("in use by another Wharf process", output);
    }

    [Fact]
    public async Task A_data_directory_the_server_may_not_write_is_named_as_such()
    {
        // Permissions stop everyone but root: as root (in a container, in CI), the server runs as 'nobody'.
        string data = Path.Combine(_dir, "data");
        Directory.CreateDirectory(data);
        File.SetUnixFileMode(data, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead
            | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        string[] launcher = Environment.UserName == "root"
            ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            : [];
        string output = await WharfServer.RunFailingStartAsync(data, launcher);

        Assert.Contains("read-only or not writable", output);
        Assert.DoesNotContain("in use by another Wharf process", output);
    }

    [Fact]
    public async Task A_second_server_on_a_data_directory_in_use_is_told_so()
    {
        await using var first = await WharfServer.StartAsync();
        string output = await WharfServer.RunFailingStartAsync(first.DataDir);
        Assert.Contains("in use by another Wharf process", output);
        Assert.DoesNotContain("read-only", output);
    }
}
