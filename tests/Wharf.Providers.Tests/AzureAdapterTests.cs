using System.Text;
using Wharf.Core.Providers;
using Wharf.Simulators;

namespace Wharf.Providers.Tests;

public sealed class AzureSimulatorFixture : IAsyncLifetime
{
    public AzureOpenAISimulator Simulator { get; private set; } = null!;

    public async Task InitializeAsync() => Simulator = await AzureOpenAISimulator.StartAsync(deployments: new HashSet<string> { "gpt-4o-prod", "embed-small" });

    public async Task DisposeAsync() => await Simulator.DisposeAsync();
}

public sealed class AzureAdapterTests(AzureSimulatorFixture fixture) : IClassFixture<AzureSimulatorFixture>
{
    private readonly AzureOpenAISimulator _sim = fixture.Simulator;

    private ProviderHarness Start(string? apiVersion = null, string? key = null)
    {
        _sim.ClearFaults();
        var settings = new List<(string, string?)> { ("az:Type", "azure"), ("az:ApiKey", key ?? _sim.ApiKey), ("az:BaseUrl", _sim.BaseUrl.ToString()), ("az:TimeoutSeconds", "20") };
        if (apiVersion is not null)
        {
            settings.Add(("az:ApiVersion", apiVersion));
        }
        return ProviderHarness.Start([.. settings]);
    }

    private static ModelCall Chat(string model, bool stream = false) =>
        new(ProviderCapability.ChatCompletions, model, Encoding.UTF8.GetBytes($$"""{"model":"{{model}}","messages":[{"role":"user","content":"Hi"}]{{(stream ? ",\"stream\":true" : "")}}}"""), stream);

    [Fact]
    public async Task TheDeploymentStyleSendsToTheDeploymentsPathWithTheDefaultGaApiVersionAndTheApiKeyHeader()
    {
        await using var harness = Start();
        var call = Chat("gpt-4o-prod");
        var outcome = await harness["az"].SendModelRequestAsync(call, CancellationToken.None);

        Assert.True(outcome.IsOk, outcome.Failure?.ToString());
        Assert.Contains(_sim.ReplyText, await OpenAIAdapterTests.ReadAllAsync(outcome.Value), StringComparison.Ordinal);
        var sent = _sim.Requests[^1];
        Assert.Equal(("/openai/deployments/gpt-4o-prod/chat/completions", "?api-version=2024-10-21"), (sent.Path, sent.Query));
        Assert.Equal(_sim.ApiKey, sent.Header("api-key"));
        Assert.Null(sent.Header("Authorization"));
        Assert.Equal(call.Body.ToArray(), sent.Body);
    }

    [Fact]
    public async Task ADatedApiVersionIsUsedAsConfigured()
    {
        await using var harness = Start("2025-04-01-preview");
        var outcome = await harness["az"].SendModelRequestAsync(
            new ModelCall(ProviderCapability.Embeddings, "embed-small", """{"input":"x","model":"embed-small"}"""u8.ToArray(), false), CancellationToken.None);
        Assert.True(outcome.IsOk, outcome.Failure?.ToString());
        Assert.Equal(("/openai/deployments/embed-small/embeddings", "?api-version=2025-04-01-preview"), (_sim.Requests[^1].Path, _sim.Requests[^1].Query));
    }

    [Fact]
    public async Task AnApiVersionTheServiceDoesNotKnowIsItsVerdictOnTheRequest()
    {
        await using var harness = Start("2023-01-01");
        var failure = (await harness["az"].SendModelRequestAsync(Chat("gpt-4o-prod"), CancellationToken.None)).Failure!;
        Assert.Equal((FailureCategory.RequestRejected, 400, "BadRequest", "API version not supported"), (failure.Category, failure.Status!.Value, failure.Error!.Code, failure.Error.Message));
    }

    [Fact]
    public async Task TheV1StyleSendsToTheOpenAIv1PathsWithTheModelInTheBodyAndServesResponses()
    {
        await using var harness = Start("v1");
        var outcome = await harness["az"].SendModelRequestAsync(Chat("gpt-4o-prod"), CancellationToken.None);
        Assert.True(outcome.IsOk, outcome.Failure?.ToString());
        Assert.Equal(("/openai/v1/chat/completions", ""), (_sim.Requests[^1].Path, _sim.Requests[^1].Query));

        var response = await harness["az"].SendModelRequestAsync(
            new ModelCall(ProviderCapability.Responses, "gpt-4o-prod", """{"model":"gpt-4o-prod","input":"Hi"}"""u8.ToArray(), false), CancellationToken.None);
        Assert.True(response.IsOk, response.Failure?.ToString());
        Assert.Contains("\"object\":\"response\"", await OpenAIAdapterTests.ReadAllAsync(response.Value), StringComparison.Ordinal);
        Assert.Equal("/openai/v1/responses", _sim.Requests[^1].Path);
    }

    [Fact]
    public async Task TheDatedStyleHasNoResponsesEndpointAndSaysSoWithoutCallingTheService()
    {
        await using var harness = Start();
        int before = _sim.Received;
        var failure = (await harness["az"].SendModelRequestAsync(
            new ModelCall(ProviderCapability.Responses, "gpt-4o-prod", """{"model":"gpt-4o-prod","input":"Hi"}"""u8.ToArray(), false), CancellationToken.None)).Failure!;
        Assert.Equal((UpstreamFailureKind.NotAttempted, FailureCategory.Unsupported), (failure.Kind, failure.Category));
        Assert.Equal(before, _sim.Received);
    }

    [Fact]
    public async Task AnUnknownDeploymentIsAModelUnavailableFailure()
    {
        await using var harness = Start();
        var failure = (await harness["az"].SendModelRequestAsync(Chat("gpt-5-nope"), CancellationToken.None)).Failure!;
        Assert.Equal((FailureCategory.ModelUnavailableForEndpoint, 404, false, "DeploymentNotFound"), (failure.Category, failure.Status!.Value, failure.Retryable, failure.Error!.Code));
    }

    [Fact]
    public async Task AWrongKeyIsACredentialFailure()
    {
        await using var harness = Start(key: "ffffffffffffffffffffffffffffffff");
        var failure = (await harness["az"].SendModelRequestAsync(Chat("gpt-4o-prod"), CancellationToken.None)).Failure!;
        Assert.Equal((FailureCategory.CredentialsInvalidOrForbidden, 401, "401"), (failure.Category, failure.Status!.Value, failure.Error!.Code));
        Assert.StartsWith("Access denied due to invalid subscription key", failure.Error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(402, FailureCategory.ProviderAccessMissing, false)]
    [InlineData(403, FailureCategory.CredentialsInvalidOrForbidden, false)]
    [InlineData(500, FailureCategory.ServerError, true)]
    [InlineData(503, FailureCategory.ServerError, true)]
    public async Task FaultsAreClassifiedAsForOpenAI(int status, FailureCategory category, bool retryable)
    {
        await using var harness = Start();
        _sim.Enqueue(Fault.Status(status));
        var failure = (await harness["az"].SendModelRequestAsync(Chat("gpt-4o-prod"), CancellationToken.None)).Failure!;
        Assert.Equal((category, status, retryable, status.ToString(System.Globalization.CultureInfo.InvariantCulture)), (failure.Category, failure.Status!.Value, failure.Retryable, failure.Error!.Code));
    }

    [Fact]
    public async Task A429CarriesItsRetryAfter()
    {
        await using var harness = Start();
        _sim.Enqueue(Fault.RateLimited("12"));
        var failure = (await harness["az"].SendModelRequestAsync(Chat("gpt-4o-prod"), CancellationToken.None)).Failure!;
        Assert.Equal((FailureCategory.RateLimited, true, TimeSpan.FromSeconds(12)), (failure.Category, failure.Retryable, failure.RetryAfter!.Value));
    }

    [Fact]
    public async Task TimeoutsMalformedAnswersAndDroppedConnectionsAreRetryable()
    {
        await using var harness = Start();
        var hold = new Hold();
        _sim.Enqueue(Fault.Hold(hold));
        var held = harness["az"].SendModelRequestAsync(Chat("gpt-4o-prod"), CancellationToken.None);
        await _sim.WaitForInFlightAsync(1).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(UpstreamFailureKind.Timeout, (await harness.AdvanceUntilDoneAsync(held, TimeSpan.FromSeconds(5))).Failure!.Kind);
        hold.Release();

        _sim.Enqueue(Fault.MalformedJson());
        Assert.Equal(UpstreamFailureKind.Malformed, (await harness["az"].SendModelRequestAsync(Chat("gpt-4o-prod"), CancellationToken.None)).Failure!.Kind);

        _sim.Enqueue(Fault.CloseConnection());
        var closed = (await harness["az"].SendModelRequestAsync(Chat("gpt-4o-prod"), CancellationToken.None)).Failure!;
        Assert.Equal((UpstreamFailureKind.ConnectionFailed, true), (closed.Kind, closed.Retryable));
    }

    [Fact]
    public async Task StreamingPassesEventsThrough()
    {
        await using var harness = Start();
        var pause = new Hold();
        _sim.Enqueue(Fault.PauseStreamAfterFirstEvent(pause));
        var outcome = await harness["az"].SendModelRequestAsync(Chat("gpt-4o-prod", stream: true), CancellationToken.None);
        await using var response = outcome.Value;
        var reader = new StreamReader(response.Content);
        Assert.StartsWith("data: {", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)), StringComparison.Ordinal);
        pause.Release();
        Assert.EndsWith("data: [DONE]\n\n", await reader.ReadToEndAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, "/openai/files", "?api-version=2024-10-21")]
    [InlineData("v1", "/openai/v1/files", "")]
    public async Task FilesGoToTheOpenAIFilesPathsOfTheChosenStyle(string? apiVersion, string path, string versionQuery)
    {
        await using var harness = Start(apiVersion);
        var az = harness["az"];
        var uploaded = await az.UploadFileAsync(new UpstreamFileUpload(new MemoryStream([1, 2, 3, 4]), 4, "in.jsonl", "batch", "application/jsonl"), CancellationToken.None);
        Assert.True(uploaded.IsOk, uploaded.Failure?.ToString());
        Assert.Equal((path, versionQuery, _sim.ApiKey), (_sim.Requests[^1].Path, _sim.Requests[^1].Query, _sim.Requests[^1].Header("api-key")));
        Assert.Equal([1, 2, 3, 4], _sim.Requests[^1].Upload!.Content);

        var page = await az.ListFilesAsync(new UpstreamFileQuery(1, null, "desc", "batch"), CancellationToken.None);
        Assert.True(page.IsOk, page.Failure?.ToString());
        Assert.Equal(path, _sim.Requests[^1].Path);
        string expectedQuery = versionQuery.Length == 0 ? "?limit=1&order=desc&purpose=batch" : versionQuery + "&limit=1&order=desc&purpose=batch";
        Assert.Equal(expectedQuery, _sim.Requests[^1].Query);
        Assert.Single(page.Value.Data);

        var deleted = await az.DeleteFileAsync(uploaded.Value.Id, CancellationToken.None);
        Assert.True(deleted.IsOk && deleted.Value);
        Assert.Equal(($"{path}/{uploaded.Value.Id}", versionQuery), (_sim.Requests[^1].Path, _sim.Requests[^1].Query));
        Assert.DoesNotContain(_sim.Files, f => f.Id == uploaded.Value.Id);
    }
}
