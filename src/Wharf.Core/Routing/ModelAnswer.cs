using System.Buffers;
using Wharf.Core.Errors;
using Wharf.Core.Providers;

namespace Wharf.Core.Routing;

/// <summary>
/// An upstream's 2xx answer, ready to be passed on: what was read of it before it was accepted (<see cref="Head"/>:
/// the first read of a stream, the whole of a JSON answer within the bound) and the rest, still upstream
/// (<see cref="Rest"/>). Disposing it releases the upstream connection and the buffer.
/// </summary>
public sealed class ModelAnswer : IAsyncDisposable
{
    private readonly ModelResponse _response;
    private byte[]? _buffer;
    private readonly int _length;

    internal ModelAnswer(ModelResponse response, byte[] buffer, int length, bool complete, int? jsonObjectEnd, bool jsonObjectEmpty)
    {
        _response = response;
        _buffer = buffer;
        _length = length;
        IsComplete = complete;
        JsonObjectEnd = jsonObjectEnd;
        IsEmptyJsonObject = jsonObjectEmpty;
    }

    public int Status => _response.Status;

    public string? ContentType => _response.ContentType;

    public bool IsEventStream => _response.IsEventStream;

    /// <summary>The answer's first bytes, as the upstream sent them.</summary>
    public ReadOnlyMemory<byte> Head => _buffer is { } buffer ? buffer.AsMemory(0, _length) : throw new ObjectDisposedException(nameof(ModelAnswer));

    /// <summary><see cref="Head"/> is the whole answer: <see cref="Rest"/> holds nothing more.</summary>
    public bool IsComplete { get; }

    /// <summary>
    /// When the whole answer is a JSON object: the index in <see cref="Head"/> of its closing brace (where
    /// <c>extra_fields</c> may be added, unless the object has a member of that name already); else null.
    /// </summary>
    public int? JsonObjectEnd { get; }

    /// <summary>The answer is <c>{}</c>, so a member added to it needs no comma.</summary>
    public bool IsEmptyJsonObject { get; }

    /// <summary>What is left of the answer upstream, to be copied as it arrives.</summary>
    public Stream Rest => _response.Content;

    /// <summary>The provider that answered.</summary>
    public required string Provider { get; init; }

    /// <summary>The model as sent upstream.</summary>
    public required string Model { get; init; }

    /// <summary>Upstream calls made for this request, retries and fallbacks included.</summary>
    public required int Attempts { get; init; }

    /// <summary>What Bifrost's <c>extra_fields</c> reports of this answer.</summary>
    public required ExtraFields ExtraFields { get; init; }

    /// <summary>The routing of the request (for an error that ends a stream already started).</summary>
    internal UpstreamDiagnostics Routing { get; init; } = new();

    /// <summary>The failed calls before this answer.</summary>
    internal IReadOnlyList<FailedCall> Failures { get; init; } = [];

    /// <summary>
    /// The error that ends a stream the upstream broke after its first bytes were passed on: a 502 whose
    /// diagnostics hold the failures before the answer and this one.
    /// </summary>
    public WharfError BrokenStream(UpstreamFailure failure) =>
        new(502, $"The upstream provider '{Provider}' failed while its answer was being streamed: {failure.Error?.Message ?? "the stream broke off."}", null, "upstream_stream_failed")
        {
            Upstream = DispatchDiagnostics.Build(Routing, [.. Failures, new FailedCall(Provider, failure)], Attempts, ExtraFields),
        };

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        await _response.DisposeAsync();
    }
}
