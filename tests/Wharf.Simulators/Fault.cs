namespace Wharf.Simulators;

/// <summary>
/// What a simulator does with a request instead of (or before) answering it normally. Scripted per test: queued
/// for the next requests, per model, or for every request (<see cref="UpstreamSimulator"/>).
/// </summary>
public abstract record Fault
{
    /// <summary>An error answer; <paramref name="body"/> defaults to the provider's error shape for that status.</summary>
    public static Fault Status(int status, string? body = null, IReadOnlyDictionary<string, string>? headers = null) => new StatusFault(status, body, headers ?? new Dictionary<string, string>());

    /// <summary>429 with <c>Retry-After</c> (seconds or an HTTP date, as given) and optionally OpenAI's <c>retry-after-ms</c>.</summary>
    public static Fault RateLimited(string retryAfter, string? retryAfterMs = null)
    {
        var headers = new Dictionary<string, string> { ["Retry-After"] = retryAfter };
        if (retryAfterMs is not null)
        {
            headers["retry-after-ms"] = retryAfterMs;
        }
        return new StatusFault(429, null, headers);
    }

    /// <summary>Waits this long (real time, ended by the client going away), then answers normally.</summary>
    public static Fault Delay(TimeSpan delay) => new DelayFault(delay);

    /// <summary>200 with <c>Content-Type: application/json</c> and a body that is not JSON.</summary>
    public static Fault MalformedJson() => new MalformedJsonFault();

    /// <summary>
    /// 200 with <c>Content-Type: application/json</c> and this body, sent chunked (no <c>Content-Length</c>) in flushed
    /// pieces; with <paramref name="lastPieceWhen"/>, the last piece only once it is released.
    /// </summary>
    public static Fault ChunkedJson(byte[] body, Hold? lastPieceWhen = null) => new ChunkedJsonFault(body, lastPieceWhen);

    /// <summary>Closes the connection without answering.</summary>
    public static Fault CloseConnection() => new CloseConnectionFault();

    /// <summary>
    /// A streamed answer cut (connection reset) after this many events; with <paramref name="dropWhen"/>, only once
    /// it is released, so that the client surely holds the events first (a reset can discard what the client's
    /// system received but the client had not read yet).
    /// </summary>
    public static Fault DropStreamAfter(int events, Hold? dropWhen = null) => new DropStreamFault(events, dropWhen);

    /// <summary>Answers only once <paramref name="hold"/> is released (or the client goes away).</summary>
    public static Fault Hold(Hold hold) => new HoldFault(hold);

    /// <summary>A streamed answer that sends its first event, then waits for <paramref name="hold"/> before the rest.</summary>
    public static Fault PauseStreamAfterFirstEvent(Hold hold) => new PauseStreamFault(hold);
}

public sealed record StatusFault(int Code, string? Body, IReadOnlyDictionary<string, string> Headers) : Fault;

public sealed record DelayFault(TimeSpan Duration) : Fault;

public sealed record MalformedJsonFault : Fault;

public sealed record ChunkedJsonFault(byte[] Body, Hold? LastPieceWhen) : Fault;

public sealed record CloseConnectionFault : Fault;

public sealed record DropStreamFault(int Events, Hold? DropWhen) : Fault;

public sealed record HoldFault(Hold Gate) : Fault;

public sealed record PauseStreamFault(Hold Gate) : Fault;

/// <summary>A gate a test opens: requests held by it wait until <see cref="Release"/>.</summary>
public sealed class Hold
{
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Released => _released.Task;

    public void Release() => _released.TrySetResult();
}
