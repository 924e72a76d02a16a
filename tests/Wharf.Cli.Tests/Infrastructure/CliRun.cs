using System.Diagnostics;
using System.Text;

namespace Wharf.Cli.Tests.Infrastructure;

/// <summary>What a finished <c>wharf</c> process left: its exit code and everything it printed.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>The process's highest resident memory while it ran (as last seen, up to 20 ms before it ended).</summary>
    public long PeakMemoryBytes { get; init; }

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>
/// Runs the built <c>wharf</c> (src/Wharf.Cli's build output) as a process, as a script would: stdin, stdout and
/// stderr redirected (so no terminal: no prompt, plain progress lines), settings from the environment, and a
/// configuration directory of its own (where upload states are kept).
/// </summary>
public sealed class CliRunner : IDisposable
{
    private readonly Dictionary<string, string?> _environment;

    public CliRunner(Uri server, string? apiKey = WharfServer.Key, string? adminKey = null)
    {
        ConfigDir = Directory.CreateTempSubdirectory("wharf-cli-config-").FullName;
        _environment = new()
        {
            ["WHARF_URL"] = server.ToString(),
            ["WHARF_API_KEY"] = apiKey,
            ["WHARF_ADMIN_KEY"] = adminKey,
            ["XDG_CONFIG_HOME"] = ConfigDir,
            ["HOME"] = ConfigDir,
            ["DOTNET_NOLOGO"] = "1",
        };
    }

    public string ConfigDir { get; }

    /// <summary>Where the CLI keeps the states of uploads in parts.</summary>
    public string UploadStateDir => Path.Combine(ConfigDir, "wharf", "uploads");

    public CliRunner With(string name, string? value)
    {
        _environment[name] = value;
        return this;
    }

    public async Task<CliResult> RunAsync(params string[] args)
    {
        using var process = Start(args);
        return await process.WaitAsync(TimeSpan.FromMinutes(5));
    }

    public CliProcess Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add(CliAssembly);
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var (name, value) in _environment)
        {
            if (value is null)
            {
                info.Environment.Remove(name);
            }
            else
            {
                info.Environment[name] = value;
            }
        }
        return new CliProcess(Process.Start(info)!);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(ConfigDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>wharf.dll in the build output of the same configuration as this test assembly.</summary>
    private static string CliAssembly { get; } = FindCliAssembly();

    private static string FindCliAssembly()
    {
        string testDir = AppContext.BaseDirectory;
        string configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(testDir)).Parent!.Name;
        var dir = new DirectoryInfo(testDir);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Wharf.slnx")))
        {
            dir = dir.Parent;
        }
        string path = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("No Wharf.slnx above " + testDir),
            "src", "Wharf.Cli", "bin", configuration, "net10.0", "wharf.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException("Build src/Wharf.Cli first.", path);
    }
}

/// <summary>A running <c>wharf</c> process, its output collected as it comes.</summary>
public sealed class CliProcess : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stdout;
    private readonly Task<string> _stderr;
    private readonly Task _watchMemory;
    private long _peakMemoryBytes;

    internal CliProcess(Process process)
    {
        _process = process;
        _process.StandardInput.Close();
        _stdout = process.StandardOutput.ReadToEndAsync();
        _stderr = process.StandardError.ReadToEndAsync();
        _watchMemory = WatchMemoryAsync();
    }

    /// <summary>The highest resident memory of the process seen so far (the kernel's <c>VmHWM</c>, read every 20 ms).</summary>
    public long PeakMemoryBytes => Interlocked.Read(ref _peakMemoryBytes);

    private async Task WatchMemoryAsync()
    {
        string status = $"/proc/{_process.Id}/status";
        while (!_process.HasExited)
        {
            try
            {
                foreach (string line in await File.ReadAllLinesAsync(status))
                {
                    if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    {
                        long kib = long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
                        Interlocked.Exchange(ref _peakMemoryBytes, Math.Max(PeakMemoryBytes, kib * 1024));
                    }
                }
            }
            catch (IOException)
            {
                return;
            }
            await Task.Delay(20);
        }
    }

    public bool HasExited => _process.HasExited;

    public async Task<CliResult> WaitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"wharf did not end within {timeout}:\n{await _stderr}");
        }
        await _watchMemory;
        return new CliResult(_process.ExitCode, await _stdout, await _stderr) { PeakMemoryBytes = PeakMemoryBytes };
    }

    /// <summary>SIGKILL: the CLI gets no chance to clean up, as when a machine or a terminal goes away.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
