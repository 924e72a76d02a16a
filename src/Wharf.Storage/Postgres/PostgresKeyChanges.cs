using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Wharf.Core.Auth;

namespace Wharf.Storage.Postgres;

/// <summary>
/// The changes that can make a cached key wrong (a key revoked, a workspace changed or deleted), announced on one
/// PostgreSQL channel by the transaction that makes them: PostgreSQL delivers a <c>NOTIFY</c> to the listeners when its
/// transaction commits, and never when it rolls back, so nothing is announced that did not happen.
/// </summary>
internal static class PostgresKeyChanges
{
    public const string Channel = "wharf_key_changes";

    /// <summary>Announces a change as part of <paramref name="transaction"/>.</summary>
    public static async Task AnnounceAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"NOTIFY {Channel};", connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}

/// <summary>
/// Clears this node's key cache whenever a change is announced on <see cref="PostgresKeyChanges.Channel"/> (by any
/// node), so a revoked key or a deleted workspace is refused everywhere as soon as the announcement arrives. It listens
/// on a connection of its own from the catalog's data source. While it is not listening (at start, or once the
/// connection is lost) an announcement could be missed, so the cache is suspended: every key is looked up in the
/// catalog until the listener is listening again, which then clears the cache and lets it be used. A lost connection
/// is opened again after a delay that doubles with each failed attempt, up to <see cref="MaxRetryDelay"/>.
/// </summary>
internal sealed partial class PostgresKeyChangeListener(
    PostgresDatabase database,
    KeyCache cache,
    TimeProvider time,
    ILogger<PostgresKeyChangeListener> logger) : BackgroundService
{
    internal static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(250);
    internal static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long the connection may stay silent before a query checks it is still there: a connection that breaks with
    /// a word (the server stopping, a reset) is noticed at once; one that is silently dropped, within this time (and
    /// the query's own timeout of the same length).
    /// </summary>
    internal TimeSpan CheckInterval { get; init; } = TimeSpan.FromSeconds(5);

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Until the first LISTEN is in place, a change made through another node would go unheard.
        cache.Suspend();
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        int failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ListenAsync(
                    () =>
                    {
                        if (failures == 0)
                        {
                            LogListening(logger);
                        }
                        else
                        {
                            LogListeningAgain(logger, failures);
                        }
                        failures = 0;
                    },
                    stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                cache.Suspend();
                failures++;
                TimeSpan delay = RetryDelay(failures);
                LogNotListening(logger, ex.Message, delay.TotalSeconds);
                try
                {
                    await Task.Delay(delay, time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>The wait before attempt <paramref name="failures"/> + 1: doubling from <see cref="FirstRetryDelay"/>, at most <see cref="MaxRetryDelay"/>.</summary>
    internal static TimeSpan RetryDelay(int failures) =>
        failures >= 10 ? MaxRetryDelay : TimeSpan.FromTicks(Math.Min(FirstRetryDelay.Ticks << (failures - 1), MaxRetryDelay.Ticks));

    /// <summary>Opens a connection, listens, lets the cache be used, then waits for announcements until the connection fails.</summary>
    private async Task ListenAsync(Action listening, CancellationToken cancellationToken)
    {
        await using var connection = await database.DataSource.OpenConnectionAsync(cancellationToken);
        connection.Notification += (_, _) => cache.Clear();
        await using (var listen = new NpgsqlCommand($"LISTEN {PostgresKeyChanges.Channel};", connection))
        {
            await listen.ExecuteNonQueryAsync(cancellationToken);
        }
        // Every change committed from here on is announced to this connection; one committed before is already what
        // the catalog answers, and the cache is emptied of what was read before it.
        cache.Resume();
        listening();
        await using var check = new NpgsqlCommand("SELECT 1;", connection) { CommandTimeout = Math.Max(1, (int)CheckInterval.TotalSeconds) };
        while (true)
        {
            if (!await connection.WaitAsync(CheckInterval, cancellationToken))
            {
                await check.ExecuteScalarAsync(cancellationToken);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Listening for key changes on the PostgreSQL catalog: revocations made through any node clear this node's key cache.")]
    private static partial void LogListening(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Listening for key changes on the PostgreSQL catalog again after {Failures} failed attempt(s): the key cache is cleared and used again.")]
    private static partial void LogListeningAgain(ILogger logger, int failures);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Not listening for key changes on the PostgreSQL catalog ({Error}): every key is looked up in the catalog until listening again; next attempt in {DelaySeconds} s.")]
    private static partial void LogNotListening(ILogger logger, string error, double delaySeconds);
}
