using Wharf.Core.Errors;
using Wharf.Core.Providers;
using Wharf.Core.Routing;

namespace Wharf.Core.Tests.Routing;

public sealed class ModelRouterTests
{
    private readonly RoutingRig _rig = new();

    public ModelRouterTests()
    {
        _rig.Add("openai");
        _rig.Add("groq");
        _rig.Add("azure");
        _rig.Routing.Default = ["azure", "openai"];
        _rig.Routing.Models["llama"] = ["groq", "openai"];
    }

    private Result<RoutePlan> Route(string json, string? provider = null, string[]? allowed = null)
    {
        using var request = RoutingRig.Request(json);
        return _rig.Router().Route(request, provider, RoutingRig.Workspace(allowed));
    }

    /// <summary>The model sent upstream and the candidates, comma-separated.</summary>
    private static (string Model, string Candidates) Of(Result<RoutePlan> plan)
    {
        Assert.True(plan.IsOk, plan.IsOk ? null : plan.Error.Message);
        return (plan.Value.Model, string.Join(",", plan.Value.Candidates.Select(c => c.Id)));
    }

    [Fact]
    public void A_prefix_naming_a_provider_wins_over_everything_and_is_stripped()
    {
        var plan = Route("{\"model\":\"groq/llama\",\"provider\":\"azure\"}", provider: "openai");
        Assert.Equal(("llama", "groq"), Of(plan));
        Assert.Equal("groq/llama", plan.Value.ModelRequested);
    }

    [Fact]
    public void A_prefix_that_names_no_provider_is_part_of_the_model_name()
    {
        Assert.Equal(("meta-llama/Llama-3", "azure,openai"), Of(Route("{\"model\":\"meta-llama/Llama-3\"}")));
        Assert.Equal(("openai/", "azure,openai"), Of(Route("{\"model\":\"openai/\"}")));
    }

    [Fact]
    public void The_body_provider_comes_before_the_one_named_outside_the_body()
    {
        Assert.Equal(("llama", "azure"), Of(Route("{\"model\":\"llama\",\"provider\":\"azure\"}", provider: "openai")));
        Assert.Equal(("llama", "openai"), Of(Route("{\"model\":\"llama\"}", provider: "openai")));
    }

    [Fact]
    public void A_model_list_comes_before_the_default_list_and_keeps_its_order()
    {
        Assert.Equal(("llama", "groq,openai"), Of(Route("{\"model\":\"llama\"}")));
        Assert.Equal(("gpt-4o", "azure,openai"), Of(Route("{\"model\":\"gpt-4o\"}")));
    }

    [Theory]
    [InlineData("nope")]
    [InlineData("<script>alert(1)</script>\r\nx-injected: 1")]
    public void An_unknown_provider_is_a_400_on_provider(string name)
    {
        foreach (var plan in new[] { Route("{\"model\":\"m\"}", provider: name), Route($"{{\"model\":\"m\",\"provider\":{System.Text.Json.JsonSerializer.Serialize(name)}}}") })
        {
            var error = plan.ErrorOf();
            Assert.Equal((400, "provider", "unknown_provider"), (error.Status, error.Param, error.Code));
        }
        string longName = new('x', 5000);
        Assert.DoesNotContain(longName, Route("{\"model\":\"m\"}", provider: longName).ErrorOf().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_filter_stage_is_recorded_with_whom_it_dropped()
    {
        var rig = new RoutingRig();
        rig.Add("off", enabled: false);
        rig.Add("elsewhere");
        rig.Add("files-only", capabilities: ProviderCapability.Files);
        rig.Add("other-models", models: ["gpt-4o"]);
        rig.Add("good", models: ["llama"]);
        rig.Routing.Default = ["off", "elsewhere", "files-only", "other-models", "good"];
        using var request = RoutingRig.Request("{\"model\":\"llama\"}");

        var plan = rig.Router().Route(request, null, RoutingRig.Workspace("files-only", "other-models", "good", "off"));

        Assert.Equal(("llama", "good"), Of(plan));
        var stages = plan.Value.Diagnostics.RoutingDiagnostics!.FilterStages;
        Assert.Equal(
            [
                (ModelRouter.StageEnabled, 5, 4, "off:disabled"),
                (ModelRouter.StageWorkspace, 4, 3, "elsewhere:not_enabled_for_workspace"),
                (ModelRouter.StageEndpoint, 3, 2, "files-only:unsupported_endpoint"),
                (ModelRouter.StageModel, 2, 1, "other-models:model_not_served"),
            ],
            stages.Select(s => (s.Stage, s.BeforeCount, s.AfterCount, string.Join(",", s.DroppedProviders.Select(d => $"{d.ProviderId}:{d.Reason}")))));
        var candidates = plan.Value.Diagnostics.ProviderCandidateDiagnostics!;
        Assert.Equal((5, 4, 1), (candidates.TotalProviders, candidates.SupportsEndpointCount, candidates.CandidateCount));
        Assert.Equal(["files-only"], candidates.DroppedUnsupportedEndpoint);
        var enablement = plan.Value.Diagnostics.ProviderEnablement!;
        Assert.Equal("chat.completions", enablement.Capability);
        Assert.Equal(["elsewhere", "files-only", "other-models", "good"], enablement.ProvidersBefore);
        Assert.Equal(["files-only", "other-models", "good"], enablement.ProvidersAfter);
        Assert.Equal([new DroppedProvider("elsewhere", "not_enabled_for_workspace")], enablement.Dropped);
    }

    [Fact]
    public void No_candidate_left_is_a_503_saying_which_stage_dropped_whom()
    {
        var error = Route("{\"model\":\"llama\"}", null, ["azure"]).ErrorOf();

        Assert.Equal((503, "no_eligible_provider"), (error.Status, error.Code));
        Assert.Contains("'groq' is not enabled for this workspace", error.Message, StringComparison.Ordinal);
        Assert.Contains("'openai' is not enabled for this workspace", error.Message, StringComparison.Ordinal);
        var workspaceStage = error.Upstream!.RoutingDiagnostics!.FilterStages.Single(s => s.Stage == ModelRouter.StageWorkspace);
        Assert.Equal((2, 0), (workspaceStage.BeforeCount, workspaceStage.AfterCount));
        Assert.Equal(["groq", "openai"], error.Upstream.ProviderEnablement!.Dropped.Select(d => d.ProviderId));
        Assert.Equal(0, error.Upstream.AttemptCount);
    }

    [Fact]
    public void No_provider_named_anywhere_is_a_503_too()
    {
        _rig.Routing.Default = [];
        var error = Route("{\"model\":\"gpt-4o\"}").ErrorOf();
        Assert.Equal(503, error.Status);
        Assert.Contains("Wharf:Routing:Default", error.Message, StringComparison.Ordinal);
        Assert.All(error.Upstream!.RoutingDiagnostics!.FilterStages, s => Assert.Equal((0, 0), (s.BeforeCount, s.AfterCount)));
    }

    [Fact]
    public void The_endpoint_stage_drops_a_provider_that_lacks_the_endpoint_even_when_named()
    {
        var rig = new RoutingRig();
        rig.Add("chat-only", capabilities: ProviderCapability.ChatCompletions);
        using var request = RoutingRig.Request("{\"model\":\"e\"}", ProviderCapability.Embeddings);
        var error = rig.Router().Route(request, "chat-only", RoutingRig.Workspace(null)).ErrorOf();
        Assert.Equal(503, error.Status);
        Assert.Equal(["chat-only"], error.Upstream!.ProviderCandidateDiagnostics!.DroppedUnsupportedEndpoint);
        Assert.Contains("does not serve embeddings", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Routing_lists_naming_no_configured_provider_fail_validation_naming_the_key()
    {
        var validation = new RoutingOptionsValidation(new TestRegistry([.. _rig.Providers]));
        var result = validation.Validate(null, new RoutingOptions
        {
            Default = ["openai", "typo"],
            Models = { ["m"] = ["nope"], ["empty"] = [] },
        });
        Assert.True(result.Failed);
        Assert.Contains("Wharf:Routing:Default:1 names 'typo'", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Wharf:Routing:Models:m:0 names 'nope'", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Wharf:Routing:Models:empty is empty", result.FailureMessage, StringComparison.Ordinal);
        Assert.True(validation.Validate(null, new RoutingOptions { Default = ["groq"], Models = { ["x"] = ["azure", "openai"] } }).Succeeded);
    }
}
