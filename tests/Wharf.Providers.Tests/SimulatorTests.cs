using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Wharf.Simulators;

namespace Wharf.Providers.Tests;

/// <summary>The simulators themselves, spoken to over raw HTTP: what other tests rely on them to check and to script.</summary>
public sealed class SimulatorTests : IAsyncLifetime
{
    private OpenAISimulator _openai = null!;
    private AzureOpenAISimulator _azure = null!;
    private readonly HttpClient _http = new();

    public async Task InitializeAsync()
    {
        _openai = await OpenAISimulator.StartAsync();
        _azure = await AzureOpenAISimulator.StartAsync(deployments: new HashSet<string> { "dep" });
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _openai.DisposeAsync();
        await _azure.DisposeAsync();
    }

    private async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> PostAsync(Uri url, string json, (string Name, string Value)? auth)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (auth is { } header)
        {
            request.Headers.TryAddWithoutValidation(header.Name, header.Value);
        }
        var response = await _http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    private (string, string) Bearer => ("Authorization", "Bearer " + _openai.ApiKey);

    private Uri OpenAI(string path) => new(_openai.BaseUrl + path);

    [Fact]
    public async Task OpenAIChecksTheKeyTheJsonAndTheModelAsItsApiDoes()
    {
        var missing = await PostAsync(OpenAI("/chat/completions"), """{"model":"m","messages":[]}""", null);
        Assert.Equal(HttpStatusCode.Unauthorized, missing.Status);
        Assert.Contains("You didn't provide an API key", missing.Body, StringComparison.Ordinal);

        var wrong = await PostAsync(OpenAI("/chat/completions"), """{"model":"m","messages":[]}""", ("Authorization", "Bearer sk-not-the-right-one"));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
        Assert.Equal("invalid_api_key", JsonDocument.Parse(wrong.Body).RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.DoesNotContain("sk-not-the-right-one", wrong.Body, StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.BadRequest, (await PostAsync(OpenAI("/chat/completions"), "{not json", Bearer)).Status);
        var noModel = await PostAsync(OpenAI("/chat/completions"), """{"messages":[]}""", Bearer);
        Assert.Equal(HttpStatusCode.BadRequest, noModel.Status);
        Assert.Contains("you must provide a model parameter", noModel.Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await PostAsync(OpenAI("/nope"), "{}", Bearer)).Status);

        var ok = await PostAsync(OpenAI("/chat/completions"), """{"model":"m","messages":[]}""", Bearer);
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        Assert.Equal("chat.completion", JsonDocument.Parse(ok.Body).RootElement.GetProperty("object").GetString());
    }

    [Fact]
    public async Task FaultsComeFromTheQueueFirstThenTheModelsRuleThenAlways()
    {
        _openai.Always = Fault.Status(500);
        _openai.SetRule("special", Fault.Status(404));
        _openai.Enqueue(Fault.Status(402));
        _openai.Enqueue(Fault.RateLimited("3"));

        Assert.Equal(HttpStatusCode.PaymentRequired, (await PostAsync(OpenAI("/chat/completions"), """{"model":"special"}""", Bearer)).Status);
        var limited = await PostAsync(OpenAI("/chat/completions"), """{"model":"special"}""", Bearer);
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.Status);
        Assert.Equal(TimeSpan.FromSeconds(3), limited.Response.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.NotFound, (await PostAsync(OpenAI("/chat/completions"), """{"model":"special"}""", Bearer)).Status);
        Assert.Equal(HttpStatusCode.InternalServerError, (await PostAsync(OpenAI("/chat/completions"), """{"model":"other"}""", Bearer)).Status);

        _openai.ClearFaults();
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(OpenAI("/chat/completions"), """{"model":"special"}""", Bearer)).Status);
    }

    [Fact]
    public async Task ADelayedAnswerIsANormalAnswer()
    {
        _openai.Enqueue(Fault.Delay(TimeSpan.FromMilliseconds(20)));
        var answer = await PostAsync(OpenAI("/embeddings"), """{"model":"e","input":["a","b"]}""", Bearer);
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal(2, JsonDocument.Parse(answer.Body).RootElement.GetProperty("data").GetArrayLength());
    }

    [Fact]
    public async Task TheRequestsAreRecordedAsReceived()
    {
        await PostAsync(OpenAI("/responses?x=1"), """{"model":"r","input":"hi"}""", Bearer);
        var recorded = _openai.Requests[^1];
        Assert.Equal(("POST", "/v1/responses", "?x=1"), (recorded.Method, recorded.Path, recorded.Query));
        Assert.Equal("""{"model":"r","input":"hi"}""", recorded.BodyText);
        Assert.Equal("Bearer " + _openai.ApiKey, recorded.Header("authorization"));
    }

    [Fact]
    public async Task FilesCanBeUploadedReadListedAndDeleted()
    {
        using var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" }, { new ByteArrayContent([7, 8, 9]), "file", "in.jsonl" } };
        using var upload = new HttpRequestMessage(HttpMethod.Post, OpenAI("/files")) { Content = form };
        upload.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _openai.ApiKey);
        using var uploaded = await _http.SendAsync(upload);
        string id = JsonDocument.Parse(await uploaded.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;

        using var get = new HttpRequestMessage(HttpMethod.Get, OpenAI($"/files/{id}/content"));
        get.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _openai.ApiKey);
        using var content = await _http.SendAsync(get);
        Assert.Equal([7, 8, 9], await content.Content.ReadAsByteArrayAsync());

        using var delete = new HttpRequestMessage(HttpMethod.Delete, OpenAI($"/files/{id}"));
        delete.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _openai.ApiKey);
        using var deleted = await _http.SendAsync(delete);
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);

        using var again = new HttpRequestMessage(HttpMethod.Delete, OpenAI($"/files/{id}"));
        again.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _openai.ApiKey);
        using var missing = await _http.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task AzureChecksTheApiKeyTheApiVersionAndTheDeployment()
    {
        var origin = _azure.BaseUrl;
        var key = ("api-key", _azure.ApiKey);
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync(new Uri(origin, "/openai/deployments/dep/chat/completions?api-version=2024-10-21"), "{}", null)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync(new Uri(origin, "/openai/deployments/dep/chat/completions?api-version=2024-10-21"), "{}", ("Authorization", "Bearer " + _azure.ApiKey))).Status);
        var noVersion = await PostAsync(new Uri(origin, "/openai/deployments/dep/chat/completions"), "{}", key);
        Assert.Equal((HttpStatusCode.NotFound, "Resource not found"), (noVersion.Status, JsonDocument.Parse(noVersion.Body).RootElement.GetProperty("error").GetProperty("message").GetString()));
        Assert.Equal(HttpStatusCode.BadRequest, (await PostAsync(new Uri(origin, "/openai/deployments/dep/chat/completions?api-version=1999-01-01"), "{}", key)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await PostAsync(new Uri(origin, "/openai/deployments/other/chat/completions?api-version=2024-10-21"), "{}", key)).Status);

        var deployment = await PostAsync(new Uri(origin, "/openai/deployments/dep/chat/completions?api-version=2024-10-21"), """{"messages":[]}""", key);
        Assert.Equal(HttpStatusCode.OK, deployment.Status);
        Assert.Equal("dep", JsonDocument.Parse(deployment.Body).RootElement.GetProperty("model").GetString());

        Assert.Equal(HttpStatusCode.BadRequest, (await PostAsync(new Uri(origin, "/openai/v1/chat/completions"), """{"messages":[]}""", key)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await PostAsync(new Uri(origin, "/openai/v1/chat/completions"), """{"model":"other","messages":[]}""", key)).Status);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(new Uri(origin, "/openai/v1/chat/completions"), """{"model":"dep","messages":[]}""", key)).Status);
    }

    [Fact]
    public async Task ARefusedPortRefuses()
    {
        var error = await Assert.ThrowsAsync<HttpRequestException>(() => _http.GetAsync(RefusedPort.Url("/v1/models")));
        Assert.Equal(HttpRequestError.ConnectionError, error.HttpRequestError);
    }
}
