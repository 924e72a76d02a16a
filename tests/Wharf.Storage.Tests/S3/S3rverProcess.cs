using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Wharf.Tests.S3;

/// <summary>
/// A throwaway s3rver (an S3-compatible server) on a free loopback port, keeping its objects in a temp directory that
/// is deleted with it. The executable comes from <c>WHARF_TEST_S3RVER</c> (the README's test command installs it);
/// without it the tests that need S3 fail, they are not skipped. This file is shared by the storage and server tests.
/// </summary>
public sealed partial class S3rverProcess : IAsyncDisposable
{
    public const string Variable = "WHARF_TEST_S3RVER";

    /// <summary>s3rver's built-in credentials.</summary>
    public const string AccessKey = "S3RVER";

    public const string SecretKey = "S3RVER";

    private readonly string _executable;
    private readonly string[] _buckets;
    private readonly List<string> _output = [];
    private Process? _process;

    private S3rverProcess(string executable, string directory, string[] buckets)
    {
        _executable = executable;
        Directory = directory;
        _buckets = buckets;
    }

    /// <summary>Where s3rver keeps the objects.</summary>
    public string Directory { get; }

    public Uri ServiceUrl { get; private set; } = null!;

    /// <summary>Starts s3rver with <paramref name="buckets"/> created.</summary>
    public static async Task<S3rverProcess> StartAsync(params string[] buckets)
    {
        string executable = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } path
            ? path
            : throw new InvalidOperationException(
                $"{Variable} is not set: the S3 tests need s3rver. Run the tests through ./test.sh, which installs it and sets {Variable}.");
        if (!File.Exists(executable))
        {
            throw new InvalidOperationException($"{Variable} names '{executable}', which does not exist: run ./test.sh to install s3rver.");
        }
        string directory = Path.Combine(Path.GetTempPath(), "wharf-s3rver-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(directory);
        var server = new S3rverProcess(executable, directory, buckets);
        try
        {
            // Port 0: the system picks a free port, and s3rver prints it even when silent.
            server.ServiceUrl = await server.LaunchAsync(0);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    /// <summary>Stops the server (SIGKILL), keeping its objects: an outage of the store.</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>Starts the server again on the same port and objects, after <see cref="StopAsync"/>.</summary>
    public async Task StartAgainAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                await LaunchAsync(ServiceUrl.Port);
                return;
            }
            catch (InvalidOperationException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200); // the port may not be free again yet
            }
        }
    }

    private async Task<Uri> LaunchAsync(int port)
    {
        var info = new ProcessStartInfo(_executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // s3rver makes a truncated listing's continuation token with a cipher OpenSSL 3 keeps only in its legacy
        // provider: without it every listing that has more keys than it returns is a 500.
        info.Environment["NODE_OPTIONS"] = "--openssl-legacy-provider";
        foreach (string arg in new[] { "--address", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--directory", Directory, "--silent" })
        {
            info.ArgumentList.Add(arg);
        }
        foreach (string bucket in _buckets)
        {
            info.ArgumentList.Add("--configure-bucket");
            info.ArgumentList.Add(bucket);
        }
        _process?.Dispose();
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        _process = process;
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        DataReceivedEventHandler collect = (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }
            lock (_output)
            {
                _output.Add(e.Data);
            }
            if (ListeningLine().Match(e.Data) is { Success: true } match)
            {
                listening.TrySetResult(new Uri($"http://127.0.0.1:{match.Groups[1].Value}"));
            }
        };
        process.OutputDataReceived += collect;
        process.ErrorDataReceived += collect;
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("s3rver exited during start:\n" + Output));
        process.Start();
        StartWatchdog(process.Id);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return await listening.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>
    /// A detached shell that waits for this test process to end, however it ends (the test runner may kill it before
    /// its exit handlers run), then kills this s3rver and removes its objects; it leaves as soon as s3rver is gone
    /// (stopped by a test, which may start it again on the same objects).
    /// </summary>
    private void StartWatchdog(int pid)
    {
        string script = $"exec </dev/null >/dev/null 2>&1; while kill -0 {Environment.ProcessId}; do kill -0 {pid} || exit 0; sleep 1; done; " +
            $"kill -9 {pid}; rm -rf '{Directory}'";
        var info = new ProcessStartInfo("setsid") { UseShellExecute = false };
        foreach (string argument in new[] { "sh", "-c", script })
        {
            info.ArgumentList.Add(argument);
        }
        Process.Start(info)?.Dispose();
    }

    /// <summary>What s3rver printed so far.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return string.Join('\n', _output);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (InvalidOperationException)
        {
            // never started
        }
        _process?.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [GeneratedRegex(@"S3rver listening on [^:]+:(\d+)")]
    private static partial Regex ListeningLine();
}
