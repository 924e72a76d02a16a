using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Wharf.Testing;

/// <summary>
/// A throwaway PostgreSQL cluster for the tests: <c>initdb</c> (from <c>WHARF_TEST_INITDB</c>; <c>pg_ctl</c> beside it)
/// in a temp directory, started on a free loopback port with its socket in that directory, so no test touches a system
/// database. One cluster per test process (<see cref="Shared"/>), stopped and removed when the process ends; each user
/// asks it for a fresh database (<see cref="CreateDatabaseAsync"/>). Its default collation is ICU's en-US, under which
/// mixed-case ids do not sort bytewise: a query or column that forgot <c>COLLATE "C"</c> shows in the results.
/// initdb refuses to run as root: as root the cluster runs as the user <c>postgres</c> (through <c>runuser</c>).
/// A machine without PostgreSQL fails the tests that need it with a message saying what is missing.
/// </summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    public const string InitdbVariable = "WHARF_TEST_INITDB";
    private const string User = "wharf";
    private static readonly Lazy<Task<PostgresCluster>> SharedCluster = new(StartSharedAsync);

    private readonly string _root;
    private readonly string _binDirectory;
    private readonly string? _runAs;
    private int _databases;

    private PostgresCluster(string root, string binDirectory, string? runAs, int port)
    {
        _root = root;
        _binDirectory = binDirectory;
        _runAs = runAs;
        Port = port;
    }

    /// <summary>The cluster of this test process, started on first use.</summary>
    public static Task<PostgresCluster> Shared => SharedCluster.Value;

    public int Port { get; }

    private string DataDirectory => Path.Combine(_root, "data");

    /// <summary>A connection string to <paramref name="database"/> as the cluster's superuser.</summary>
    public string ConnectionString(string database = "postgres") =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = Port, Username = User, Database = database, Timeout = 10 }.ConnectionString;

    /// <summary>Creates an empty database (a copy of <c>template1</c>) and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        string name = $"t{Interlocked.Increment(ref _databases)}_{Guid.NewGuid():N}"[..30];
        await using var connection = new NpgsqlConnection(ConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\";", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    /// <summary>Drops the database of <paramref name="connectionString"/>, closing the connections still open on it.</summary>
    public async Task DropDatabaseAsync(string connectionString)
    {
        string name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        await using var connection = new NpgsqlConnection(ConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE);", connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Stops the server (as an outage would: its clients' connections are closed at once), keeping its data.</summary>
    public Task StopAsync() => RunAsync("pg_ctl", ["stop", "-D", DataDirectory, "-m", "fast", "-w"]);

    /// <summary>Starts the server again on its data and port after <see cref="StopAsync"/>.</summary>
    public Task StartAgainAsync() => StartServerAsync();

    private Task StartServerAsync() =>
        RunAsync("pg_ctl", ["start", "-D", DataDirectory, "-w", "-t", "60", "-l", Path.Combine(_root, "server.log"),
            "-o", $"-p {Port} -k {_root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"]);

    /// <summary>Stops the server (immediately: its data is thrown away) and removes its directory.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
            {
                await RunAsync("pg_ctl", ["stop", "-D", DataDirectory, "-m", "immediate", "-w"]);
            }
        }
        finally
        {
            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<PostgresCluster> StartSharedAsync()
    {
        var cluster = await StartAsync();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => cluster.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return cluster;
    }

    /// <summary>Starts a new cluster of its own (most tests use <see cref="Shared"/>).</summary>
    public static async Task<PostgresCluster> StartAsync()
    {
        string? initdb = Environment.GetEnvironmentVariable(InitdbVariable);
        if (string.IsNullOrEmpty(initdb) || !File.Exists(initdb))
        {
            throw new InvalidOperationException(
                $"These tests need PostgreSQL's server binaries: set {InitdbVariable} to the path of initdb (./test.sh installs PostgreSQL and sets it). " +
                $"It is {(string.IsNullOrEmpty(initdb) ? "not set" : "'" + initdb + "', which does not exist")}.");
        }
        string root = Path.Combine(Path.GetTempPath(), "wharf-pg-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        string? runAs = Environment.UserName == "root" ? "postgres" : null;
        int port = FreePort();
        var cluster = new PostgresCluster(root, Path.GetDirectoryName(initdb)!, runAs, port);
        try
        {
            if (runAs is not null)
            {
                await RunProcessAsync("chown", [runAs, root], null);
            }
            await cluster.RunAsync("initdb", ["-D", cluster.DataDirectory, "-U", User, "--auth=trust", "--no-sync", "-E", "UTF8",
                "--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US"]);
            await cluster.StartServerAsync();
            cluster.StartWatchdog();
            return cluster;
        }
        catch
        {
            string log = Path.Combine(root, "server.log");
            string detail = File.Exists(log) ? await File.ReadAllTextAsync(log) : "";
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
            if (detail.Length > 0)
            {
                throw new InvalidOperationException("The test PostgreSQL server did not start:\n" + detail);
            }
            throw;
        }
    }

    /// <summary>
    /// A detached shell that waits for this test process to end, however it ends (the test runner may kill it before
    /// its exit handlers are done), then stops the server and removes its directory.
    /// </summary>
    private void StartWatchdog()
    {
        string pgCtl = Path.Combine(_binDirectory, "pg_ctl");
        string stop = $"{(_runAs is null ? "" : $"runuser -u {_runAs} -- ")}'{pgCtl}' stop -D '{DataDirectory}' -m immediate -w";
        string script = $"exec </dev/null >/dev/null 2>&1; while kill -0 {Environment.ProcessId}; do sleep 1; done; " +
            $"[ -f '{DataDirectory}/postmaster.pid' ] && {stop}; rm -rf '{_root}'";
        var info = new ProcessStartInfo("setsid") { UseShellExecute = false };
        foreach (string argument in new[] { "sh", "-c", script })
        {
            info.ArgumentList.Add(argument);
        }
        Process.Start(info)?.Dispose();
    }

    private Task RunAsync(string tool, IReadOnlyList<string> arguments) =>
        _runAs is null
            ? RunProcessAsync(Path.Combine(_binDirectory, tool), arguments, null)
            : RunProcessAsync("runuser", ["-u", _runAs, "--", Path.Combine(_binDirectory, tool), .. arguments], null);

    private static async Task RunProcessAsync(string fileName, IReadOnlyList<string> arguments, string? workingDirectory)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Cannot run {fileName}.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{fileName} {string.Join(' ', arguments)} exited with {process.ExitCode}:\n{await output}\n{await error}");
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
