using System.Buffers;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Providers;
using Wharf.Core.Routing;
using Wharf.Server.Auth;
using Wharf.Server.Errors;
using Wharf.Server.Hosting;

namespace Wharf.Server.Api;

/// <summary>
/// The model requests: <c>POST /chat/completions</c>, <c>/completions</c>, <c>/embeddings</c>, <c>/responses</c>.
/// Thin handlers: read the body (at most <c>Wharf:Requests:MaxBodyBytes</c>), hand it to
/// <see cref="ModelRequestService"/> (route, retries, fallback), and pass the answer on (<see cref="ModelAnswerResult"/>).
/// </summary>
internal static class ModelsApi
{
    public static RouteGroupBuilder MapModelsApi(this RouteGroupBuilder api, IOptions<ModelRequestOptions> options)
    {
        var models = api.MapGroup("").RequireScope(ApiScopes.ModelsInvoke).WithMetadata(new BodySizeLimit(options.Value.MaxBodyBytes))
            .WithTags("Model requests").WithMetadata(ErrorResponses.Upstream)
            .WithQuery(("provider", "the provider to route to (also x-model-provider, as query or header)"));
        Describe(models.MapPost("/chat/completions", ChatCompletions), "Create a chat completion on a routed provider");
        Describe(models.MapPost("/completions", Completions), "Create a completion on a routed provider");
        Describe(models.MapPost("/embeddings", Embeddings), "Create embeddings on a routed provider");
        Describe(models.MapPost("/responses", Responses), "Create a response on a routed provider");
        return api;
    }

    /// <summary>The body as sent, and the upstream's answer passed through: JSON, or server-sent events with <c>"stream": true</c>.</summary>
    private static void Describe(RouteHandlerBuilder route, string summary) =>
        route.WithSummary(summary)
            .Accepts<ModelRequestBody>("application/json")
            .Produces(StatusCodes.Status200OK, contentType: "application/json", additionalContentTypes: ["text/event-stream"]);

    private static Task<Results<ModelAnswerResult, ErrorResult>> ChatCompletions(
        HttpContext context, ModelRequestService service, IOptions<ModelRequestOptions> options, CancellationToken cancellationToken) =>
        SendAsync(context, ProviderCapability.ChatCompletions, service, options.Value, cancellationToken);

    private static Task<Results<ModelAnswerResult, ErrorResult>> Completions(
        HttpContext context, ModelRequestService service, IOptions<ModelRequestOptions> options, CancellationToken cancellationToken) =>
        SendAsync(context, ProviderCapability.Completions, service, options.Value, cancellationToken);

    private static Task<Results<ModelAnswerResult, ErrorResult>> Embeddings(
        HttpContext context, ModelRequestService service, IOptions<ModelRequestOptions> options, CancellationToken cancellationToken) =>
        SendAsync(context, ProviderCapability.Embeddings, service, options.Value, cancellationToken);

    private static Task<Results<ModelAnswerResult, ErrorResult>> Responses(
        HttpContext context, ModelRequestService service, IOptions<ModelRequestOptions> options, CancellationToken cancellationToken) =>
        SendAsync(context, ProviderCapability.Responses, service, options.Value, cancellationToken);

    private static async Task<Results<ModelAnswerResult, ErrorResult>> SendAsync(
        HttpContext context, ProviderCapability endpoint, ModelRequestService service, ModelRequestOptions options, CancellationToken cancellationToken)
    {
        var body = await ReadBodyAsync(context.Request, options.MaxBodyBytes, cancellationToken);
        if (!body.IsOk)
        {
            // The rest of the body is not read: the connection ends with this answer, and says so, so that a client
            // does not send its next request on a connection the server is closing.
            context.Response.Headers.Connection = "close";
            return body.Error.ToResult();
        }
        var answer = await service.SendAsync(context.WorkspaceOf(), endpoint, body.Value, RequestedProvider(context.Request), cancellationToken);
        if (!answer.IsOk)
        {
            if (answer.Error.Upstream is { AttemptCount: > 0, ExtraFields: { } tried } upstream)
            {
                WharfHeaders.Set(context.Response, tried.Provider, tried.ModelDeployment, upstream.AttemptCount);
            }
            return answer.Error.ToResult();
        }
        return new ModelAnswerResult(answer.Value);
    }

    /// <summary>The provider named outside the body: query <c>provider</c> or <c>x-model-provider</c>, else the header.</summary>
    private static string? RequestedProvider(HttpRequest request)
    {
        foreach (string name in (string[])["provider", "x-model-provider"])
        {
            if (request.Query.TryGetValue(name, out var values) && values[^1] is { Length: > 0 } value)
            {
                return value;
            }
        }
        string header = request.Headers["x-model-provider"].ToString();
        return header.Length > 0 ? header : null;
    }

    /// <summary>The whole body, refused with 413 as soon as it passes <paramref name="maxBytes"/>.</summary>
    private static async Task<Result<ReadOnlyMemory<byte>>> ReadBodyAsync(HttpRequest request, int maxBytes, CancellationToken cancellationToken)
    {
        if (request.ContentLength > maxBytes)
        {
            return TooLarge(maxBytes);
        }
        var reader = request.BodyReader;
        try
        {
            while (true)
            {
                var read = await reader.ReadAsync(cancellationToken);
                var buffer = read.Buffer;
                if (buffer.Length > maxBytes)
                {
                    reader.AdvanceTo(buffer.End);
                    return TooLarge(maxBytes);
                }
                if (read.IsCompleted)
                {
                    byte[] bytes = buffer.ToArray();
                    reader.AdvanceTo(buffer.End);
                    return Result<ReadOnlyMemory<byte>>.From(bytes);
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (BadHttpRequestException ex)
        {
            return RequestBodyErrors.From(ex, null);
        }
    }

    private static WharfError TooLarge(int maxBytes) =>
        new(413, $"The JSON body is larger than {maxBytes} bytes (Wharf:Requests:MaxBodyBytes).", null, "request_too_large");
}

/// <summary>The <c>x-wharf-*</c> headers of an answer for which an upstream was called.</summary>
internal static class WharfHeaders
{
    public static void Set(HttpResponse response, string? provider, string? model, int attempts)
    {
        if (provider is not null)
        {
            response.Headers["x-wharf-provider"] = Printable(provider);
        }
        if (model is not null)
        {
            response.Headers["x-wharf-model"] = Printable(model);
        }
        response.Headers["x-wharf-attempts"] = attempts.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// A value a header can hold: printable ASCII as it is, anything else (and <c>%</c>) percent-encoded as UTF-8,
    /// so a model name from a request can never break or add a header.
    /// </summary>
    public static string Printable(string value)
    {
        if (!value.AsSpan().ContainsAnyExceptInRange(' ', '~') && !value.Contains('%', StringComparison.Ordinal))
        {
            return value;
        }
        var builder = new System.Text.StringBuilder(value.Length + 16);
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            if (c is >= ' ' and <= '~' and not '%')
            {
                builder.Append(c);
                continue;
            }
            int length;
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                length = new System.Text.Rune(c, value[++i]).EncodeToUtf8(utf8);
            }
            else
            {
                length = (System.Text.Rune.IsValid(c) ? new System.Text.Rune(c) : System.Text.Rune.ReplacementChar).EncodeToUtf8(utf8);
            }
            foreach (byte b in utf8[..length])
            {
                builder.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        return builder.ToString();
    }
}
