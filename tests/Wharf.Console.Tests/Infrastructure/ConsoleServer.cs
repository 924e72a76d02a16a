using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;

namespace Wharf.Console.Tests.Infrastructure;

/// <summary>
/// The real Wharf server in its own process on a loopback port, with a temp data directory, a workspace key, the
/// admin key and two <c>mock</c> providers (<c>mock</c>, instant; <c>slowmock</c>, which takes a while per request,
/// so that a batch on it is seen running before it completes). Started from the build output of src/Wharf.Server,
/// as a user would run it.
/// </summary>
public sealed partial class ConsoleServer : IAsyncDisposable
{
    public const string Key = "sk-test-console-key";
    public const string AdminKey = "admin-test-key-0123456789";
    public const int SlowMockLatencyMs = 400;

    private readonly List<string> _output = [];
    private Process? _process;

    private ConsoleServer(string dataDir) => DataDir = dataDir;

    public string DataDir { get; }

    public Uri BaseAddress { get; private set; } = null!;

    public Uri ConsoleAddress => new(BaseAddress, "/console/");

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

    public static async Task<ConsoleServer> StartAsync()
    {
        var server = new ConsoleServer(Path.Combine(Path.GetTempPath(), "wharf-console-test-" + Guid.NewGuid().ToString("N")));
        await server.LaunchAsync();
        return server;
    }

    public HttpClient CreateClient(string? key = Key)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private async Task LaunchAsync()
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(ServerAssembly)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in (string[])[
            ServerAssembly,
            "--urls=http://127.0.0.1:0",
            "--Wharf:DataDir=" + DataDir,
            "--Wharf:Auth:BootstrapKey=" + Key,
            "--Wharf:Auth:AdminKey=" + AdminKey,
            "--Wharf:Providers:mock:Type=mock",
            "--Wharf:Providers:slowmock:Type=mock",
            "--Wharf:Providers:slowmock:LatencyMs=" + SlowMockLatencyMs,
            "--Wharf:Providers:slowmock:MaxConcurrency=2",
        ])
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        info.Environment.Remove("ASPNETCORE_URLS");

        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
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
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("Wharf exited during start:\n" + Output));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        BaseAddress = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningLine();

    /// <summary>Wharf.Server.dll in the build output of the same configuration as this test assembly.</summary>
    private static string ServerAssembly => Path.Combine(RepositoryRoot, "src", "Wharf.Server", "bin",
        new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name, "net10.0", "Wharf.Server.dll");

    /// <summary>The directory that holds Wharf.slnx, above this test assembly.</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    private static string FindRepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Wharf.slnx")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (Wharf.slnx) above " + AppContext.BaseDirectory);
    }
}
