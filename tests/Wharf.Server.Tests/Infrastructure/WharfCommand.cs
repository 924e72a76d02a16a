using System.Diagnostics;

namespace Wharf.Server.Tests.Infrastructure;

/// <summary>
/// The server binary run as a command (<c>Wharf.Server.dll move-up ...</c>) in its own process: its stdout and stderr
/// collected line by line, a line awaited as it is printed, the process killed for real (SIGKILL) or awaited to its end.
/// </summary>
public sealed class WharfCommand : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _stdout = [];
    private readonly List<string> _stderr = [];
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Seen)> _waits = [];

    private WharfCommand(string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(WharfServer.ServerAssembly)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(WharfServer.ServerAssembly);
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["DOTNET_ENVIRONMENT"] = "Production";
        _process = new Process { StartInfo = info, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => Collect(_stdout, e.Data);
        _process.ErrorDataReceived += (_, e) => Collect(_stderr, e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public static WharfCommand Start(params string[] args) => new(args);

    /// <summary>Runs the command to its end (at most <paramref name="seconds"/>) and returns its exit code.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string[] args, int seconds = 120)
    {
        using var command = Start(args);
        int exitCode = await command.WaitForExitAsync(seconds);
        return (exitCode, command.Stdout, command.Stderr);
    }

    public string Stdout => Lines(_stdout);

    public string Stderr => Lines(_stderr);

    /// <summary>The first stdout line that <paramref name="match"/> accepts, as soon as it is printed.</summary>
    public Task<string> WaitForLineAsync(Func<string, bool> match)
    {
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_stdout)
        {
            if (_stdout.FirstOrDefault(match) is { } line)
            {
                seen.SetResult(line);
            }
            else
            {
                _waits.Add((match, seen));
            }
        }
        return seen.Task;
    }

    /// <summary>Kills the process (SIGKILL) at once, from the thread that reads its output when given a line to wait for.</summary>
    public void KillAt(Func<string, bool> match)
    {
        var seen = new TaskCompletionSource<string>();
        lock (_stdout)
        {
            _waits.Add((match, seen));
        }
        seen.Task.ContinueWith(_ => Kill(), TaskContinuationOptions.ExecuteSynchronously);
    }

    /// <summary>Sends SIGINT (what Ctrl-C sends) to the process, once <paramref name="match"/> accepts a stdout line.</summary>
    public void InterruptAt(Func<string, bool> match)
    {
        var seen = new TaskCompletionSource<string>();
        lock (_stdout)
        {
            _waits.Add((match, seen));
        }
        seen.Task.ContinueWith(
            _ =>
            {
                using var kill = Process.Start("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                kill.WaitForExit();
            },
            TaskContinuationOptions.ExecuteSynchronously);
    }

    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already ended
        }
    }

    public async Task<int> WaitForExitAsync(int seconds = 120)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"The command did not end within {seconds} s:\n{Stdout}\n{Stderr}");
        }
        return _process.ExitCode;
    }

    private void Collect(List<string> lines, string? line)
    {
        if (line is null)
        {
            return;
        }
        List<TaskCompletionSource<string>> matched = [];
        lock (_stdout)
        {
            lines.Add(line);
            if (lines == _stdout)
            {
                foreach (var wait in _waits.Where(w => w.Match(line)).ToList())
                {
                    _waits.Remove(wait);
                    matched.Add(wait.Seen);
                }
            }
        }
        matched.ForEach(seen => seen.TrySetResult(line));
    }

    private string Lines(List<string> lines)
    {
        lock (_stdout)
        {
            return string.Join('\n', lines);
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
