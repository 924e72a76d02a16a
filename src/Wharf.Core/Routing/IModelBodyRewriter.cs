using System.Text.Json;
using Wharf.Core.Errors;
using Wharf.Core.Providers;

namespace Wharf.Core.Routing;

/// <summary>
/// Rewrites a model request's body for one candidate provider before it is sent there: Wharf file ids (a
/// <c>file_id</c> content part, an <c>input_file</c>) become that provider's copies, copied there first when it has
/// none. Called once per candidate, before its first attempt. The default changes nothing.
/// </summary>
public interface IModelBodyRewriter
{
    ValueTask<ModelBodyRewrite> RewriteAsync(ModelBodyContext context, CancellationToken cancellationToken);
}

/// <summary>What a rewriter is given.</summary>
/// <param name="WorkspaceId">The caller's workspace (whose files the ids must name).</param>
/// <param name="Provider">The candidate the body is about to be sent to.</param>
/// <param name="Request">The body as the client sent it, parsed (every string in it is valid text).</param>
/// <param name="Body">The bytes about to be sent: <c>model</c> already set, Wharf's <c>provider</c> left out.</param>
public sealed record ModelBodyContext(
    string WorkspaceId,
    RegisteredProvider Provider,
    ProviderCapability Endpoint,
    JsonElement Request,
    ReadOnlyMemory<byte> Body);

/// <summary>
/// A rewriter's verdict: the body to send (rewritten or not); or an upstream failure on the way (a copy the
/// provider refused: this candidate fails and the next is tried); or the request's own fault (a file id the
/// workspace does not own: answered at once, no candidate is tried).
/// </summary>
public readonly struct ModelBodyRewrite
{
    private ModelBodyRewrite(ReadOnlyMemory<byte> body, UpstreamFailure? failure, WharfError? refusal)
    {
        Body = body;
        Failure = failure;
        Refusal = refusal;
    }

    public ReadOnlyMemory<byte> Body { get; }

    public UpstreamFailure? Failure { get; }

    public WharfError? Refusal { get; }

    public static ModelBodyRewrite Send(ReadOnlyMemory<byte> body) => new(body, null, null);

    public static ModelBodyRewrite Failed(UpstreamFailure failure) => new(default, failure ?? throw new ArgumentNullException(nameof(failure)), null);

    public static ModelBodyRewrite Refused(WharfError refusal) => new(default, null, refusal ?? throw new ArgumentNullException(nameof(refusal)));
}

/// <summary>The default: the body is sent as it is.</summary>
internal sealed class UnchangedModelBody : IModelBodyRewriter
{
    public ValueTask<ModelBodyRewrite> RewriteAsync(ModelBodyContext context, CancellationToken cancellationToken) =>
        ValueTask.FromResult(ModelBodyRewrite.Send(context.Body));
}
