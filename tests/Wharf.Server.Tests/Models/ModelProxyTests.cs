using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Models;

/// <summary>
/// Model requests through Wharf to simulated upstreams, with the official OpenAI .NET SDK and raw HTTP: bodies pass
/// through with only <c>model</c> and <c>provider</c> changed, answers come back with <c>extra_fields</c> and the
/// <c>x-wharf-*</c> headers, <c>MaxConcurrency</c> holds under load, workspaces see only their providers.
/// </summary>
[Collection(UpstreamsCollection.Name)]
public sealed class ModelProxyTests(UpstreamsFixture upstreams) : IDisposable
{
    private readonly HttpClient _client = upstreams.Server.CreateClient();

    public void Dispose() => _client.Dispose();

    private OpenAIClientOptions SdkOptions(string prefix = "/v1") => new() { Endpoint = new Uri(upstreams.Server.BaseAddress, prefix) };

    private static string Header(HttpResponseMessage response, string name) => response.Headers.GetValues(name).Single();

    [Fact]
    public async Task The_SDK_ChatClient_gets_the_upstreams_answer_with_extra_fields_and_headers()
    {
        var chat = new ChatClient("sim/gpt-4o-mini", new ApiKeyCredential(WharfServer.Key), SdkOptions());
        int before = UpstreamsFixture.CallsFor(upstreams.Sim, "gpt-4o-mini").Count;

        ClientResult<ChatCompletion> result = await chat.CompleteChatAsync([new UserChatMessage("Say hello")]);

        Assert.Equal(upstreams.Sim.ReplyText, result.Value.Content[0].Text);
        Assert.True(result.Value.Usage.TotalTokenCount > 0);
        var raw = result.GetRawResponse();
        Assert.Equal("sim", raw.Headers.TryGetValue("x-wharf-provider", out string? provider) ? provider : null);
        Assert.Equal("gpt-4o-mini", raw.Headers.TryGetValue("x-wharf-model", out string? model) ? model : null);
        Assert.Equal("1", raw.Headers.TryGetValue("x-wharf-attempts", out string? attempts) ? attempts : null);
        using var body = JsonDocument.Parse(raw.Content);
        var extra = body.RootElement.GetProperty("extra_fields");
        Assert.Equal("sim", extra.GetProperty("provider").GetString());
        Assert.Equal("sim/gpt-4o-mini", extra.GetProperty("model_requested").GetString());
        Assert.Equal("gpt-4o-mini", extra.GetProperty("model_deployment").GetString());
        Assert.Equal("chat.completions", extra.GetProperty("request_type").GetString());
        Assert.True(extra.GetProperty("latency").GetInt64() >= 0);
        var sent = UpstreamsFixture.CallsFor(upstreams.Sim, "gpt-4o-mini");
        Assert.Equal(before + 1, sent.Count);
        Assert.Equal("Bearer " + UpstreamsFixture.SimKey, sent[^1].Header("Authorization"));
        Assert.Equal("/v1/chat/completions", sent[^1].Path);
    }

    [Fact]
    public async Task A_proxied_request_starts_no_trace_when_nothing_listens()
    {
        // The framework's request diagnostics are off by default (appsettings.json): with them on, every request
        // started an Activity, and the outgoing call carried it upstream as a traceparent header.
        var chat = new ChatClient("sim/gpt-4o-mini", new ApiKeyCredential(WharfServer.Key), SdkOptions());
        int before = UpstreamsFixture.CallsFor(upstreams.Sim, "gpt-4o-mini").Count;

        await chat.CompleteChatAsync([new UserChatMessage("Say hello")]);

        var sent = UpstreamsFixture.CallsFor(upstreams.Sim, "gpt-4o-mini");
        Assert.Equal(before + 1, sent.Count);
        Assert.Equal("Bearer " + UpstreamsFixture.SimKey, sent[^1].Header("Authorization"));
        Assert.Null(sent[^1].Header("traceparent"));
    }

    [Fact]
    public async Task The_SDK_ChatClient_streams_through_every_prefix()
    {
        foreach (string prefix in (string[])["/v1", "/openai/v1", "/openai"])
        {
            var chat = new ChatClient("gpt-4o-mini", new ApiKeyCredential(WharfServer.Key), SdkOptions(prefix));
            var text = new System.Text.StringBuilder();
            await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Say hello")]))
            {
                foreach (var part in update.ContentUpdate)
                {
                    text.Append(part.Text);
                }
            }
            Assert.Equal(upstreams.Sim.ReplyText, text.ToString());
        }
    }

    [Fact]
    public async Task The_SDK_EmbeddingClient_gets_vectors_through_Wharf()
    {
        var embeddings = new EmbeddingClient("text-embedding-3-small", new ApiKeyCredential(WharfServer.Key), SdkOptions());

        var result = await embeddings.GenerateEmbeddingsAsync(["one", "two"]);

        Assert.Equal(2, result.Value.Count);
        Assert.All(result.Value, e => Assert.False(e.ToFloats().IsEmpty));
        using var body = JsonDocument.Parse(result.GetRawResponse().Content);
        Assert.Equal("embeddings", body.RootElement.GetProperty("extra_fields").GetProperty("request_type").GetString());
        var sent = UpstreamsFixture.CallsFor(upstreams.Sim, "text-embedding-3-small")[^1];
        Assert.Equal("/v1/embeddings", sent.Path);
    }

    [Fact]
    public async Task The_body_reaches_the_upstream_with_only_model_and_provider_changed()
    {
        string kept = "\"messages\":[{\"role\":\"user\",\"content\":\"caf\\u00e9 \\\"q\\\" \\ud83d\\ude00\",\"model\":\"inner\"}]," +
            "\"temperature\":1.50e0,\"metadata\":{\"provider\":\"inner\",\"n\":[1, 2]},\"user\":\"u-1\"";
        string body = "{\"provider\":\"sim\"," + kept + ",\"model\":\"passthrough-model\"}";

        using var response = await _client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json(body));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sent = Assert.Single(UpstreamsFixture.CallsFor(upstreams.Sim, "passthrough-model"));
        Assert.Equal("{" + kept + ",\"model\":\"passthrough-model\"}", sent.BodyText);
        Assert.Equal(("sim", "passthrough-model", "1"), (Header(response, "x-wharf-provider"), Header(response, "x-wharf-model"), Header(response, "x-wharf-attempts")));
    }

    [Fact]
    public async Task The_answer_is_the_upstreams_plus_extra_fields_and_completions_and_responses_work_too()
    {
        foreach (var (path, type) in new[] { ("/v1/completions", "completions"), ("/openai/responses", "responses") })
        {
            string body = type == "completions" ? "{\"model\":\"mock/text\",\"prompt\":\"hi\"}" : "{\"model\":\"mock/text\",\"input\":\"hi\"}";
            using var response = await _client.PostAsync(path, UpstreamsFixture.Json(body));
            var json = await Wire.JsonAsync(response);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.StartsWith("application/json", response.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
            Assert.Equal(type == "completions" ? "text_completion" : "response", json.GetProperty("object").GetString());
            Assert.Equal(("mock", "text", type), (json.GetProperty("extra_fields").GetProperty("provider").GetString(),
                json.GetProperty("extra_fields").GetProperty("model_deployment").GetString(), json.GetProperty("extra_fields").GetProperty("request_type").GetString()));
            Assert.Equal("mock", Header(response, "x-wharf-provider"));
        }
    }

    [Fact]
    public async Task The_provider_can_be_named_by_query_or_header()
    {
        using (var response = await _client.PostAsync("/v1/chat/completions?provider=mock", UpstreamsFixture.Json("{\"model\":\"q\",\"messages\":[]}")))
        {
            Assert.Equal("mock", Header(response, "x-wharf-provider"));
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = UpstreamsFixture.Json("{\"model\":\"h\",\"messages\":[]}") };
        request.Headers.Add("x-model-provider", "backup");
        using (var response = await _client.SendAsync(request))
        {
            Assert.Equal(("backup", HttpStatusCode.OK), (Header(response, "x-wharf-provider"), response.StatusCode));
            Assert.Single(UpstreamsFixture.CallsFor(upstreams.Backup, "h"));
        }
    }

    [Fact]
    public async Task A_model_name_that_cannot_be_a_header_value_is_sent_escaped_in_x_wharf_model()
    {
        using var response = await _client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json("{\"model\":\"mock/m\\u00e9\\r\\nx-evil: 1\",\"messages\":[]}"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("m%C3%A9%0D%0Ax-evil: 1", Header(response, "x-wharf-model"));
        Assert.False(response.Headers.Contains("x-evil"));
        var json = await Wire.JsonAsync(response);
        Assert.Equal("m\u00e9\r\nx-evil: 1", json.GetProperty("extra_fields").GetProperty("model_deployment").GetString());
    }

    [Fact]
    public async Task MaxConcurrency_holds_under_load_and_callers_over_it_wait_instead_of_being_refused()
    {
        var hold = new Hold();
        upstreams.Limited.SetRule("held-model", Fault.Hold(hold));
        int received = upstreams.Limited.Received;

        var calls = Enumerable.Range(0, 6)
            .Select(_ => _client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json("{\"model\":\"limited/held-model\",\"messages\":[]}")))
            .ToList();
        await upstreams.Limited.WaitForInFlightAsync(2).WaitAsync(TimeSpan.FromSeconds(10));
        // Give the other four time to reach Wharf and wait there (this only weakens the test if too short).
        await Task.Delay(300);
        Assert.Equal(received + 2, upstreams.Limited.Received);
        Assert.All(calls, call => Assert.False(call.IsCompleted));

        hold.Release();
        var responses = await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.All(responses, r => Assert.Equal("1", Header(r, "x-wharf-attempts")));
        Assert.Equal(received + 6, upstreams.Limited.Received);
        Assert.Equal(2, upstreams.Limited.MaxInFlight);
        foreach (var response in responses)
        {
            response.Dispose();
        }
    }

    [Fact]
    public async Task A_workspace_reaches_only_its_allowed_providers_and_the_rest_are_reported_dropped()
    {
        using var admin = new Admin(upstreams.Server);
        using var created = await admin.Client.PostAsJsonAsync("/admin/workspaces", new { name = "only-backup", allowed_providers = new[] { "backup" } });
        var workspace = await Wire.JsonAsync(created);
        Assert.True(created.IsSuccessStatusCode, workspace.ToString());
        var (_, secret) = await admin.CreateKeyAsync(workspace.Id());
        using var client = upstreams.Server.CreateClient(secret);

        using var refused = await client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json("{\"model\":\"gpt-4o\",\"messages\":[]}"));
        var error = await Wire.AssertErrorAsync(refused, 503, code: "no_eligible_provider");
        var json = await Wire.JsonAsync(refused);
        var enablement = json.GetProperty("provider_enablement");
        Assert.Equal(["sim"], enablement.GetProperty("providersBefore").EnumerateArray().Select(e => e.GetString()));
        Assert.Empty(enablement.GetProperty("providersAfter").EnumerateArray());
        var dropped = Assert.Single(enablement.GetProperty("dropped").EnumerateArray());
        Assert.Equal(("sim", "not_enabled_for_workspace"), (dropped.GetProperty("providerId").GetString(), dropped.GetProperty("reason").GetString()));
        var stage = json.GetProperty("routing_diagnostics").GetProperty("filterStages")[1];
        Assert.Equal(("enabled_for_workspace", 1, 0), (stage.GetProperty("stage").GetString(), stage.GetProperty("beforeCount").GetInt32(), stage.GetProperty("afterCount").GetInt32()));
        Assert.Contains("not enabled for this workspace", error.GetProperty("message").GetString(), StringComparison.Ordinal);

        using var allowed = await client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json("{\"model\":\"backup/gpt-4o\",\"messages\":[]}"));
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    [Fact]
    public async Task A_disabled_provider_is_dropped_at_the_first_stage()
    {
        using var response = await _client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json("{\"model\":\"off-model\",\"messages\":[]}"));

        await Wire.AssertErrorAsync(response, 503, code: "no_eligible_provider");
        var stage = (await Wire.JsonAsync(response)).GetProperty("routing_diagnostics").GetProperty("filterStages")[0];
        Assert.Equal("configured_and_enabled", stage.GetProperty("stage").GetString());
        Assert.Equal(("off", "disabled"), (stage.GetProperty("droppedProviders")[0].GetProperty("providerId").GetString(), stage.GetProperty("droppedProviders")[0].GetProperty("reason").GetString()));
    }
}
