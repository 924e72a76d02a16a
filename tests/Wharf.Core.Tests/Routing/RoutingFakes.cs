using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Wharf.Core.Auth;
using Wharf.Core.Providers;
using Wharf.Core.Routing;

namespace Wharf.Core.Tests.Routing;

/// <summary>A provider that answers each model call with the next scripted outcome (the last one repeats).</summary>
internal sealed class ScriptedProvider(string id, params ProviderCapability[] capabilities) : IProvider
{
    private readonly List<Func<ModelCall, UpstreamOutcome<ModelResponse>>> _script = [];
    private readonly Channel<ModelCall> _calls = Channel.CreateUnbounded<ModelCall>();

    public string Id => id;

    public string Type => "scripted";

    public IReadOnlySet<ProviderCapability> Capabilities { get; } =
        new HashSet<ProviderCapability>(capabilities.Length == 0 ? ProviderCapabilities.ModelEndpoints : capabilities);

    /// <summary>Every model call received, in order.</summary>
    public List<ModelCall> Calls { get; } = [];

    /// <summary>Answers that were handed out and then disposed (their connection released).</summary>
    public int Disposed;

    public ScriptedProvider Then(Func<ModelCall, UpstreamOutcome<ModelResponse>> answer)
    {
        _script.Add(answer);
        return this;
    }

    public ScriptedProvider ThenFail(UpstreamFailure failure) => Then(_ => failure);

    public ScriptedProvider ThenStatus(int status, TimeSpan? retryAfter = null, string? message = null, string? code = null, string? param = null) =>
        ThenFail(UpstreamFailure.FromAnswer(status, retryAfter, new UpstreamErrorDetail(code, message ?? $"upstream said {status}", null, param), $"{{\"error\":{{\"message\":\"upstream said {status}\"}}}}"));

    public ScriptedProvider ThenJson(string json, string contentType = "application/json") =>
        Then(_ => Answer(200, contentType, new MemoryStream(Encoding.UTF8.GetBytes(json))));

    public ScriptedProvider ThenStream(Stream content) => Then(_ => Answer(200, "text/event-stream", content));

    public ModelResponse Answer(int status, string contentType, Stream content) =>
        new(status, contentType, content, new DisposeCounter(this));

    public Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        int index;
        lock (Calls)
        {
            Calls.Add(call);
            index = Calls.Count - 1;
        }
        _calls.Writer.TryWrite(call);
        var answer = _script.Count == 0 ? (_ => UpstreamFailure.Unsupported("no script")) : _script[Math.Min(index, _script.Count - 1)];
        return Task.FromResult(answer(call));
    }

    /// <summary>Waits (up to 10 s) for the next call.</summary>
    public async Task<ModelCall> NextCallAsync() => await _calls.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));

    public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFile>>(UpstreamFailure.Unsupported("scripted"));

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<bool>>(UpstreamFailure.Unsupported("scripted"));

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFilePage>>(UpstreamFailure.Unsupported("scripted"));

    private sealed class DisposeCounter(ScriptedProvider provider) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            Interlocked.Increment(ref provider.Disposed);
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>A stream whose reads fail as a broken connection does, after the given bytes.</summary>
internal sealed class BreakingStream(byte[] before) : Stream
{
    private int _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_position >= before.Length)
        {
            throw new IOException("The connection was reset.");
        }
        int n = Math.Min(buffer.Length, before.Length - _position);
        before.AsSpan(_position, n).CopyTo(buffer.Span);
        _position += n;
        return ValueTask.FromResult(n);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

internal sealed class TestRegistry(params RegisteredProvider[] providers) : IProviderRegistry
{
    public IReadOnlyList<RegisteredProvider> All { get; } = providers;

    public bool TryGet(string id, out RegisteredProvider provider)
    {
        provider = All.FirstOrDefault(p => p.Id == id)!;
        return provider is not null;
    }
}

/// <summary>A fake clock that reports every timer created on it (each wait of the dispatcher), so a test can advance exactly past it.</summary>
internal sealed class RecordingTimeProvider : FakeTimeProvider
{
    private readonly Channel<TimeSpan> _timers = Channel.CreateUnbounded<TimeSpan>();

    public List<TimeSpan> Waits { get; } = [];

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        lock (Waits)
        {
            Waits.Add(dueTime);
        }
        _timers.Writer.TryWrite(dueTime);
        return timer;
    }

    /// <summary>Waits (up to 10 s) for the next timer to be created; returns its due time.</summary>
    public async Task<TimeSpan> NextWaitAsync() => await _timers.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));

    /// <summary>Runs <paramref name="work"/> to its end, advancing the clock past each wait it starts.</summary>
    public async Task<T> DriveAsync<T>(Task<T> work)
    {
        while (true)
        {
            var next = _timers.Reader.ReadAsync().AsTask();
            var done = await Task.WhenAny(work, next).WaitAsync(TimeSpan.FromSeconds(10));
            if (done == work)
            {
                return await work;
            }
            Advance(await next);
        }
    }
}

/// <summary>Builds routers and dispatchers over scripted providers.</summary>
internal sealed class RoutingRig
{
    public RoutingOptions Routing { get; } = new() { RetryBaseDelayMilliseconds = 200, RetryMaxDelayMilliseconds = 5_000 };

    public ModelResponseOptions Responses { get; } = new();

    public RecordingTimeProvider Time { get; } = new();

    public List<RegisteredProvider> Providers { get; } = [];

    public IModelBodyRewriter Rewriter { get; set; } = new PassThroughRewriter();

    /// <summary>The part of each backoff that is waited.</summary>
    public double Jitter { get; set; } = 0.5;

    public ScriptedProvider Add(string id, bool enabled = true, string[]? models = null, params ProviderCapability[] capabilities)
    {
        var provider = new ScriptedProvider(id, capabilities);
        Providers.Add(new RegisteredProvider(provider, enabled, models is null ? null : new HashSet<string>(models)));
        return provider;
    }

    public ModelRouter Router() => new(new TestRegistry([.. Providers]), Options.Create(Routing));

    public ModelDispatcher Dispatcher() =>
        new(Rewriter, Options.Create(Routing), Options.Create(Responses), Time, NullLogger<ModelDispatcher>.Instance, () => Jitter);

    public static Workspace Workspace(params string[]? allowed) =>
        new() { Id = "ws_1", Name = "w", CreatedAt = 0, AllowedProviders = allowed };

    public static ModelRequest Request(string json, ProviderCapability endpoint = ProviderCapability.ChatCompletions)
    {
        var parsed = ModelRequest.Parse(endpoint, Encoding.UTF8.GetBytes(json));
        Assert.True(parsed.IsOk, parsed.IsOk ? null : parsed.Error.Message);
        return parsed.Value;
    }

    /// <summary>Routes and dispatches <paramref name="json"/>, driving the clock past every backoff.</summary>
    public async Task<Errors.Result<ModelAnswer>> SendAsync(string json, string? provider = null, Workspace? workspace = null, CancellationToken cancellationToken = default)
    {
        using var request = Request(json);
        var plan = Router().Route(request, provider, workspace ?? Workspace(null));
        if (!plan.IsOk)
        {
            return plan.Error;
        }
        return await Time.DriveAsync(Dispatcher().DispatchAsync("ws_1", request, plan.Value, cancellationToken));
    }

    private sealed class PassThroughRewriter : IModelBodyRewriter
    {
        public ValueTask<ModelBodyRewrite> RewriteAsync(ModelBodyContext context, CancellationToken cancellationToken) =>
            ValueTask.FromResult(ModelBodyRewrite.Send(context.Body));
    }
}
