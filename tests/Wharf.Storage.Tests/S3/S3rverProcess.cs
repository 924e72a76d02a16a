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

    private readonly Process _process;
    private readonly List<string> _output = [];

    private S3rverProcess(Process process, string directory)
    {
        _process = process;
        Directory = directory;
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
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { "--address", "127.0.0.1", "--port", "0", "--directory", directory, "--silent" })
        {
            info.ArgumentList.Add(arg);
        }
        foreach (string bucket in buckets)
        {
            info.ArgumentList.Add("--configure-bucket");
            info.ArgumentList.Add(bucket);
        }
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var server = new S3rverProcess(process, directory);
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        DataReceivedEventHandler collect = (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }
            lock (server._output)
            {
                server._output.Add(e.Data);
            }
            // Port 0: the system picks a free port, and s3rver prints it even when silent.
            if (ListeningLine().Match(e.Data) is { Success: true } match)
            {
                listening.TrySetResult(new Uri($"http://127.0.0.1:{match.Groups[1].Value}"));
            }
        };
        process.OutputDataReceived += collect;
        process.ErrorDataReceived += collect;
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("s3rver exited during start:\n" + server.Output));
        try
        {
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            server.ServiceUrl = await listening.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
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
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
            // never started
        }
        _process.Dispose();
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
