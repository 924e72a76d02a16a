using System.ClientModel;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using OpenAI;
using OpenAI.Files;

namespace Wharf.Server.Tests.Infrastructure;

/// <summary>
/// The real Wharf server in its own process, on a loopback port, with a temp data directory: started from the
/// build output of src/Wharf.Server, killed for real in crash tests, restarted on the same data directory.
/// </summary>
public sealed partial class WharfServer : IAsyncDisposable
{
    public const string Key = "sk-test-functional-key";
    public const string AdminKey = "admin-test-key-0123456789";

    private readonly string[] _extraArgs;
    private readonly string[] _launcher;
    private readonly bool _ownsDataDir;
    private bool _ownMount;
    private Process? _process;
    private readonly List<string> _output = [];

    private WharfServer(string dataDir, bool ownsDataDir, string[] extraArgs, string[]? launcher = null)
    {
        DataDir = dataDir;
        _ownsDataDir = ownsDataDir;
        _extraArgs = extraArgs;
        _launcher = launcher ?? [];
    }

    public string DataDir { get; }

    /// <summary>
    /// Where this test process reaches the data directory: <see cref="DataDir"/>, or for a server on a small disk the
    /// same path inside the server's mount namespace (through <c>/proc/&lt;pid&gt;/root</c>).
    /// </summary>
    public string DataPath => !_ownMount ? DataDir : $"/proc/{ProcessId}/root{DataDir}";

    public Uri BaseAddress { get; private set; } = null!;

    public int ProcessId => _process?.Id ?? throw new InvalidOperationException("Not started.");

    /// <summary>Everything the server printed so far (stdout and stderr).</summary>
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

    public static async Task<WharfServer> StartAsync(params string[] extraArgs)
    {
        string dataDir = Path.Combine(Path.GetTempPath(), "wharf-test-" + Guid.NewGuid().ToString("N"));
        var server = new WharfServer(dataDir, ownsDataDir: true, extraArgs);
        await server.LaunchAsync(bootstrapKey: Key);
        return server;
    }

    /// <summary>
    /// Starts a server through <paramref name="launcher"/>, a command that runs the rest of its command line (e.g.
    /// <c>prlimit --nofile=512:512</c>) and replaces itself with it, so that the process id is the server's.
    /// </summary>
    public static async Task<WharfServer> StartThroughAsync(string[] launcher, params string[] extraArgs)
    {
        string dataDir = Path.Combine(Path.GetTempPath(), "wharf-test-" + Guid.NewGuid().ToString("N"));
        var server = new WharfServer(dataDir, ownsDataDir: true, extraArgs, launcher);
        await server.LaunchAsync(bootstrapKey: Key);
        return server;
    }

    /// <summary>
    /// Starts a server whose data directory is a file system of <paramref name="bytes"/> bytes of its own: a tmpfs
    /// mounted in a new user and mount namespace (<c>unshare</c>), so it needs no root, and it goes away with the
    /// process. The test fills and frees it through <see cref="DataPath"/>.
    /// </summary>
    public static async Task<WharfServer> StartOnSmallDiskAsync(long bytes, params string[] extraArgs)
    {
        string dataDir = Path.Combine(Path.GetTempPath(), "wharf-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDir);
        // unshare and sh exec in place: the process id stays the server's.
        string[] launcher = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
            "mount -t tmpfs -o size=\"$1\" tmpfs \"$2\" && shift 2 && exec \"$@\"", "sh",
            bytes.ToString(System.Globalization.CultureInfo.InvariantCulture), dataDir];
        var server = new WharfServer(dataDir, ownsDataDir: true, extraArgs, launcher) { _ownMount = true };
        await server.LaunchAsync(bootstrapKey: Key);
        return server;
    }

    /// <summary>
    /// Runs a server on <paramref name="dataDir"/> (through <paramref name="launcher"/>, if any) that must stop during
    /// its start, and returns what it printed.
    /// </summary>
    public static Task<string> RunFailingStartAsync(string dataDir, params string[] launcher) => RunFailingStartAsync(dataDir, launcher, []);

    /// <summary>As above, with <paramref name="extraArgs"/> on the server's command line (configuration).</summary>
    public static async Task<string> RunFailingStartAsync(string dataDir, string[] launcher, string[] extraArgs)
    {
        await using var server = new WharfServer(dataDir, ownsDataDir: false, extraArgs, launcher);
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => server.LaunchAsync(bootstrapKey: Key));
        Assert.Contains("Wharf exited during start", failure.Message);
        await server._process!.WaitForExitAsync();
        Assert.NotEqual(0, server._process.ExitCode);
        return server.Output;
    }

    /// <summary>Whether the server process is still running.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>Starts a server on an existing data directory with no bootstrap key.</summary>
    public static async Task<WharfServer> StartWithoutKeyAsync(string dataDir)
    {
        var server = new WharfServer(dataDir, ownsDataDir: false, []);
        await server.LaunchAsync(bootstrapKey: null);
        return server;
    }

    public HttpClient CreateClient(string? key = Key)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        return client;
    }

    public OpenAIFileClient CreateFileClient(string prefix = "/v1") =>
        new(new ApiKeyCredential(Key), new OpenAIClientOptions { Endpoint = new Uri(BaseAddress, prefix) });

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
    }

    /// <summary>Kills the process and starts a new one on the same data directory.</summary>
    public async Task RestartAsync()
    {
        Kill();
        await LaunchAsync(bootstrapKey: Key);
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        if (_ownsDataDir)
        {
            try
            {
                Directory.Delete(DataDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task LaunchAsync(string? bootstrapKey)
    {
        _process?.Dispose();
        var info = new ProcessStartInfo(_launcher.Length > 0 ? _launcher[0] : "dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(ServerAssembly)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (_launcher.Length > 0)
        {
            foreach (string arg in _launcher.Skip(1))
            {
                info.ArgumentList.Add(arg);
            }
            info.ArgumentList.Add("dotnet");
        }
        info.ArgumentList.Add(ServerAssembly);
        info.ArgumentList.Add("--urls=http://127.0.0.1:0");
        info.ArgumentList.Add("--Wharf:DataDir=" + DataDir);
        if (bootstrapKey is not null)
        {
            info.ArgumentList.Add("--Wharf:Auth:BootstrapKey=" + bootstrapKey);
        }
        info.ArgumentList.Add("--Wharf:Auth:AdminKey=" + AdminKey);
        foreach (string arg in _extraArgs)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        info.Environment.Remove("ASPNETCORE_URLS");

        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = info };
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
            var match = ListeningLine().Match(e.Data);
            if (match.Success)
            {
                listening.TrySetResult(new Uri(match.Groups[1].Value));
            }
        };
        process.OutputDataReceived += collect;
        process.ErrorDataReceived += collect;
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("Wharf exited during start:\n" + Output));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        BaseAddress = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningLine();

    /// <summary>The directory that holds Wharf.slnx, above this test assembly.</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>Wharf.Server.dll in the build output of the same configuration as this test assembly.</summary>
    internal static string ServerAssembly { get; } = FindServerAssembly();

    private static string FindRepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Wharf.slnx")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (Wharf.slnx) above " + AppContext.BaseDirectory);
    }

    private static string FindServerAssembly()
    {
        string configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name; // bin/<Configuration>/net10.0
        string path = Path.Combine(RepositoryRoot, "src", "Wharf.Server", "bin", configuration, "net10.0", "Wharf.Server.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException("Build src/Wharf.Server first.", path);
    }
}
