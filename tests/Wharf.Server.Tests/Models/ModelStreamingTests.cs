using System.Net;
using System.Text;
using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Models;

/// <summary>
/// Streams through the real server: events pass as they arrive (the first reaches the client while the upstream
/// still holds the rest), a failure before the first byte falls back, a failure after it ends the stream with an
/// SSE error event, and a client that goes away cancels the upstream call.
/// </summary>
[Collection(UpstreamsCollection.Name)]
public sealed class ModelStreamingTests(UpstreamsFixture upstreams) : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly HttpClient _client = upstreams.Server.CreateClient();

    public void Dispose() => _client.Dispose();

    private Task<HttpResponseMessage> StreamAsync(string model, CancellationToken cancellationToken = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = UpstreamsFixture.Json($"{{\"model\":\"{model}\",\"stream\":true,\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}"),
        };
        return _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    /// <summary>Reads lines up to and including the first blank line after a <c>data:</c> line (one SSE event).</summary>
    private static async Task<string> ReadEventAsync(StreamReader reader)
    {
        var text = new StringBuilder();
        while (await reader.ReadLineAsync().WaitAsync(Patience) is { } line)
        {
            text.Append(line).Append('\n');
            if (line.Length == 0 && text.ToString().Contains("data:", StringComparison.Ordinal))
            {
                break;
            }
        }
        return text.ToString();
    }

    private static string Header(HttpResponseMessage response, string name) => response.Headers.GetValues(name).Single();

    [Fact]
    public async Task The_first_event_reaches_the_client_before_the_upstream_sends_the_rest()
    {
        var hold = new Hold();
        upstreams.Sim.SetRule("paused-model", Fault.PauseStreamAfterFirstEvent(hold));

        using var response = await StreamAsync("paused-model").WaitAsync(Patience);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/event-stream", response.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        Assert.Equal(("sim", "1"), (Header(response, "x-wharf-provider"), Header(response, "x-wharf-attempts")));
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        string first = await ReadEventAsync(reader);
        Assert.False(hold.Released.IsCompleted);
        Assert.Contains("\"chat.completion.chunk\"", first, StringComparison.Ordinal);

        hold.Release();
        string rest = await reader.ReadToEndAsync().WaitAsync(Patience);
        Assert.EndsWith("data: [DONE]\n\n", rest, StringComparison.Ordinal);
        Assert.DoesNotContain("extra_fields", first + rest, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_that_breaks_before_its_first_byte_is_retried_and_is_a_502_when_it_never_starts()
    {
        upstreams.Sim.SetRule("dropped-early-model", Fault.DropStreamAfter(0));
        int before = UpstreamsFixture.CallsFor(upstreams.Backup, "dropped-early-model").Count;

        using var response = await _client.PostAsync("/v1/chat/completions?provider=sim", UpstreamsFixture.Json(
            "{\"model\":\"dropped-early-model\",\"stream\":true,\"messages\":[]}"));

        // Named by query: one candidate, so its three calls all break and the answer is a 502 before any byte.
        await Wire.AssertErrorAsync(response, 502, code: "all_candidates_failed");
        Assert.Equal("3", Header(response, "x-wharf-attempts"));
        var json = await Wire.JsonAsync(response);
        Assert.Equal("connection_error", json.GetProperty("failure_sample")[0].GetProperty("type").GetString());
        Assert.Equal(before, UpstreamsFixture.CallsFor(upstreams.Backup, "dropped-early-model").Count);
    }

    [Fact]
    public async Task A_stream_that_fails_before_its_first_byte_on_one_provider_is_served_by_the_next()
    {
        upstreams.Sim.SetRule("stream-fallback-model", Fault.DropStreamAfter(0));

        using var response = await StreamAsync("stream-fallback-model").WaitAsync(Patience);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(("backup", "4"), (Header(response, "x-wharf-provider"), Header(response, "x-wharf-attempts")));
        string body = await response.Content.ReadAsStringAsync();
        Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_that_breaks_after_its_first_event_ends_with_an_SSE_error_event()
    {
        // The upstream drops the connection only once the client has both events: a reset right after them could
        // make the kernel discard them unread, which would be a failure before the first byte.
        var drop = new Hold();
        upstreams.Sim.SetRule("dropped-late-model", Fault.DropStreamAfter(2, drop));

        using var response = await StreamAsync("dropped-late-model").WaitAsync(Patience);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        string events = await ReadEventAsync(reader) + await ReadEventAsync(reader);
        drop.Release();
        string body = events + await reader.ReadToEndAsync().WaitAsync(Patience);

        int errorAt = body.IndexOf("event: error\n", StringComparison.Ordinal);
        Assert.True(errorAt > 0, body);
        Assert.Equal(2, body[..errorAt].Split("data: ").Length - 1);
        string data = body[errorAt..].Split('\n')[1];
        Assert.StartsWith("data: ", data, StringComparison.Ordinal);
        using var envelope = JsonDocument.Parse(data["data: ".Length..]);
        var root = envelope.RootElement;
        Assert.Equal((502, "upstream_stream_failed", "upstream_error"), (root.GetProperty("status_code").GetInt32(),
            root.GetProperty("error").GetProperty("code").GetString(), root.GetProperty("error").GetProperty("type").GetString()));
        Assert.Equal(["sim"], root.GetProperty("failed_providers").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(1, root.GetProperty("attempt_count").GetInt32());
        Assert.EndsWith("\n\n", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_that_goes_away_mid_stream_cancels_the_upstream_call()
    {
        var hold = new Hold();
        upstreams.Sim.SetRule("abandoned-stream-model", Fault.PauseStreamAfterFirstEvent(hold));
        int aborted = upstreams.Sim.Aborted;

        var response = await StreamAsync("abandoned-stream-model").WaitAsync(Patience);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        await ReadEventAsync(reader);
        reader.Dispose();
        response.Dispose();

        await upstreams.Sim.WaitForAbortedAsync(aborted + 1).WaitAsync(Patience);
        Assert.False(hold.Released.IsCompleted);
    }

    [Fact]
    public async Task A_client_that_goes_away_before_the_answer_cancels_the_upstream_call()
    {
        var hold = new Hold();
        upstreams.Sim.SetRule("abandoned-model", Fault.Hold(hold));
        int aborted = upstreams.Sim.Aborted;
        int received = upstreams.Sim.Received;
        using var gone = new CancellationTokenSource();

        var call = _client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json("{\"model\":\"abandoned-model\",\"messages\":[]}"), gone.Token);
        await upstreams.Sim.WaitForReceivedAsync(received + 1).WaitAsync(Patience);
        await gone.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await upstreams.Sim.WaitForAbortedAsync(aborted + 1).WaitAsync(Patience);
        Assert.Equal(received + 1, upstreams.Sim.Received);
        using var health = await _client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }
}
