using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Wharf.Cli.Http;

/// <summary>
/// The server's HTTP API as the CLI uses it: sends a request with the right key, and turns any non-2xx answer (or a
/// server that cannot be reached) into a <see cref="CliFailure"/> holding the envelope's message and hint.
/// </summary>
internal sealed class WharfClient(HttpClient http, ServerAddress address, string? apiKey, string? adminKey)
{
    private const int MaxErrorBodyBytes = 64 * 1024;

    public ServerAddress Address => address;

    public Task<Outcome<JsonElement>> GetAsync(Uri uri, ApiKeyKind key, CancellationToken cancellationToken) =>
        SendForJsonAsync(() => new HttpRequestMessage(HttpMethod.Get, uri), key, cancellationToken);

    public Task<Outcome<JsonElement>> DeleteAsync(Uri uri, ApiKeyKind key, CancellationToken cancellationToken) =>
        SendForJsonAsync(() => new HttpRequestMessage(HttpMethod.Delete, uri), key, cancellationToken);

    public Task<Outcome<JsonElement>> PostJsonAsync<TBody>(Uri uri, TBody body, JsonTypeInfo<TBody> type, ApiKeyKind key, CancellationToken cancellationToken) =>
        SendForJsonAsync(() => new HttpRequestMessage(HttpMethod.Post, uri)
        {
            Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body, type))
            {
                Headers = { ContentType = new MediaTypeHeaderValue("application/json") },
            },
        }, key, cancellationToken);

    public Task<Outcome<JsonElement>> PostAsync(Uri uri, HttpContent? content, ApiKeyKind key, CancellationToken cancellationToken) =>
        SendForJsonAsync(() => new HttpRequestMessage(HttpMethod.Post, uri) { Content = content }, key, cancellationToken);

    /// <summary>Sends a request and reads its JSON answer (a small document: an object or a page, never file content).</summary>
    public async Task<Outcome<JsonElement>> SendForJsonAsync(Func<HttpRequestMessage> request, ApiKeyKind key, CancellationToken cancellationToken)
    {
        var message = request();
        string path = message.RequestUri?.AbsolutePath ?? "";
        var sent = await SendAsync(message, key, cancellationToken);
        if (!sent.IsOk)
        {
            return sent.Failure!;
        }
        using var response = sent.Value;
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            using var document = await JsonDocument.ParseAsync(body, cancellationToken: cancellationToken);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return CliFailure.Failed($"The server's answer to {path} is not JSON.", "Is WHARF_URL the address of a Wharf server?");
        }
        catch (HttpRequestException e)
        {
            return Unreachable(e);
        }
        catch (HttpIOException e)
        {
            return CliFailure.Failed($"The connection to the server was lost while reading its answer to {path}: {e.Message}");
        }
    }

    /// <summary>
    /// Sends a request and returns the 2xx response with its body unread (headers only), for the caller to stream;
    /// any other status is read as the error envelope and returned as a failure.
    /// </summary>
    public async Task<Outcome<HttpResponseMessage>> SendAsync(HttpRequestMessage request, ApiKeyKind key, CancellationToken cancellationToken)
    {
        using (request)
        {
            string? secret = key == ApiKeyKind.Admin ? adminKey : apiKey;
            if (string.IsNullOrEmpty(secret))
            {
                return key == ApiKeyKind.Admin
                    ? CliFailure.Usage("No admin key.", "Set WHARF_ADMIN_KEY or give --admin-key.")
                    : CliFailure.Usage("No API key.", "Set WHARF_API_KEY or give --api-key.");
            }
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            }
            catch (HttpRequestException e)
            {
                return Unreachable(e);
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return CliFailure.Failed($"The server at {address.Root} did not answer in time.");
            }
            if (response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.NotModified)
            {
                return response;
            }
            using (response)
            {
                return await ReadFailureAsync(response, cancellationToken);
            }
        }
    }

    /// <summary>The envelope's <c>error.message</c> and, when the server gave one, its hint and request id.</summary>
    private static async Task<CliFailure> ReadFailureAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        string? requestId = response.Headers.TryGetValues("x-request-id", out var ids) ? ids.FirstOrDefault() : null;
        string fallback = $"The server answered {(int)response.StatusCode} {response.ReasonPhrase}.";
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            var buffer = new byte[MaxErrorBodyBytes];
            int length = await body.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
            var envelope = JsonSerializer.Deserialize(buffer.AsSpan(0, length), CliJson.Default.ErrorEnvelope);
            string? message = envelope?.Error?.Message ?? envelope?.Message;
            return new CliFailure(
                ExitCodes.Failed,
                string.IsNullOrWhiteSpace(message) ? fallback : message,
                envelope?.ProviderFailureDiagnostics?.Hint,
                envelope?.GenerationId ?? requestId) { Status = (int)response.StatusCode };
        }
        catch (Exception e) when (e is JsonException or HttpRequestException or IOException)
        {
            return new CliFailure(ExitCodes.Failed, fallback, null, requestId) { Status = (int)response.StatusCode };
        }
    }

    private CliFailure Unreachable(HttpRequestException e) =>
        CliFailure.Failed($"Cannot reach the server at {address.Root}: {e.Message}", "Check WHARF_URL (or --url) and that the server runs.");
}
