using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Providers;

namespace Wharf.Core.Routing;

/// <summary>Where a model request may go: the candidates in fallback order, the model they are sent, and why.</summary>
/// <param name="ModelRequested">The model as the client sent it.</param>
/// <param name="Model">The model as sent upstream (a <c>provider/</c> prefix stripped).</param>
/// <param name="Candidates">The providers left after every filter stage, in fallback order (never empty).</param>
/// <param name="Diagnostics">The filter stages, candidate and enablement diagnostics (for the envelope).</param>
public sealed record RoutePlan(
    ProviderCapability Endpoint,
    string ModelRequested,
    string Model,
    IReadOnlyList<RegisteredProvider> Candidates,
    UpstreamDiagnostics Diagnostics);

/// <summary>
/// Chooses the candidates of a model request (DESIGN "Providers and routing"), in order of precedence: a model
/// <c>provider/model</c> whose prefix is a configured provider (stripped); else the request's provider (body, query
/// or <c>x-model-provider</c>); else <c>Wharf:Routing:Models:&lt;model&gt;</c>; else <c>Wharf:Routing:Default</c>.
/// Then filters them in stages, each recorded: configured and enabled; allowed for the workspace; supports the
/// endpoint; serves the model. An unknown provider name is 400 <c>param: provider</c>; no candidate left is 503.
/// </summary>
public sealed class ModelRouter(IProviderRegistry providers, IOptions<RoutingOptions> options)
{
    public const string StageEnabled = "configured_and_enabled";
    public const string StageWorkspace = "enabled_for_workspace";
    public const string StageEndpoint = "supports_endpoint";
    public const string StageModel = "serves_model";

    public const string ReasonDisabled = "disabled";
    public const string ReasonNotEnabledForWorkspace = "not_enabled_for_workspace";
    public const string ReasonUnsupportedEndpoint = "unsupported_endpoint";
    public const string ReasonModelNotServed = "model_not_served";

    /// <param name="requestedProvider">
    /// The provider named outside the body (query <c>provider</c> or the <c>x-model-provider</c> header), if any; the
    /// body's <c>provider</c> takes precedence over it.
    /// </param>
    public Result<RoutePlan> Route(ModelRequest request, string? requestedProvider, Workspace workspace) =>
        Route(request.Endpoint, request.Model, request.Provider ?? requestedProvider, workspace);

    public Result<RoutePlan> Route(ProviderCapability endpoint, string modelRequested, string? requestedProvider, Workspace workspace)
    {
        string model = modelRequested;
        IReadOnlyList<string> named;
        int slash = modelRequested.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0 && slash < modelRequested.Length - 1 && providers.TryGet(modelRequested[..slash], out _))
        {
            named = [modelRequested[..slash]];
            model = modelRequested[(slash + 1)..];
        }
        else if (requestedProvider is not null)
        {
            if (!providers.TryGet(requestedProvider, out _))
            {
                return WharfErrors.Invalid("provider",
                    $"Unknown provider '{Echo.Safe(requestedProvider)}': name one of the configured providers (GET /v1/providers lists them).",
                    "unknown_provider");
            }
            named = [requestedProvider];
        }
        else if (options.Value.Models.TryGetValue(modelRequested, out var forModel))
        {
            named = forModel;
        }
        else
        {
            named = options.Value.Default;
        }

        var candidates = new List<RegisteredProvider>(named.Count);
        foreach (string id in named.Distinct(StringComparer.Ordinal))
        {
            if (providers.TryGet(id, out var provider))
            {
                candidates.Add(provider);
            }
        }
        var routed = candidates.Select(p => p.Id).ToList();
        var stages = new List<FilterStage>(4);

        candidates = Filter(stages, StageEnabled, candidates, p => p.Enabled || p.Id == ProviderAccess.Local, ReasonDisabled, out _);
        var beforeWorkspace = candidates.Select(p => p.Id).ToList();
        candidates = Filter(stages, StageWorkspace, candidates, p => p.IsUsableBy(workspace), ReasonNotEnabledForWorkspace, out var notAllowed);
        candidates = Filter(stages, StageEndpoint, candidates, p => p.Provider.Capabilities.Contains(endpoint), ReasonUnsupportedEndpoint, out var unsupported);
        candidates = Filter(stages, StageModel, candidates, p => p.Models is null || p.Models.Contains(model), ReasonModelNotServed, out _);

        var diagnostics = new UpstreamDiagnostics
        {
            RoutingDiagnostics = new RoutingDiagnostics(stages),
            ProviderCandidateDiagnostics = new ProviderCandidateDiagnostics(
                TotalProviders: routed.Count,
                SupportsEndpointCount: named.Distinct(StringComparer.Ordinal)
                    .Count(id => providers.TryGet(id, out var p) && p.Provider.Capabilities.Contains(endpoint)),
                CandidateCount: candidates.Count,
                DroppedUnsupportedEndpoint: unsupported,
                DroppedMissingAdapter: []),
            ProviderEnablement = new ProviderEnablement(
                endpoint.WireName(),
                beforeWorkspace,
                [.. beforeWorkspace.Except(notAllowed, StringComparer.Ordinal)],
                [.. notAllowed.Select(id => new DroppedProvider(id, ReasonNotEnabledForWorkspace))]),
        };
        if (candidates.Count == 0)
        {
            return new WharfError(503, NoCandidateMessage(endpoint, modelRequested, routed, stages), null, "no_eligible_provider")
            {
                Upstream = diagnostics,
            };
        }
        return new RoutePlan(endpoint, modelRequested, model, candidates, diagnostics);
    }

    private static List<RegisteredProvider> Filter(
        List<FilterStage> stages, string stage, List<RegisteredProvider> before, Func<RegisteredProvider, bool> keep, string reason, out List<string> dropped)
    {
        var after = new List<RegisteredProvider>(before.Count);
        dropped = [];
        foreach (var provider in before)
        {
            if (keep(provider))
            {
                after.Add(provider);
            }
            else
            {
                dropped.Add(provider.Id);
            }
        }
        stages.Add(new FilterStage(stage, before.Count, after.Count, [.. dropped.Select(id => new DroppedProvider(id, reason))]));
        return after;
    }

    private static string NoCandidateMessage(ProviderCapability endpoint, string model, List<string> routed, List<FilterStage> stages)
    {
        string what = $"No provider can serve model '{Echo.Safe(model)}' on {endpoint.WireName()}";
        if (routed.Count == 0)
        {
            return what + ": none is named for it (set Wharf:Routing:Default or Wharf:Routing:Models, or name a provider).";
        }
        var drops = stages.SelectMany(s => s.DroppedProviders).Select(d => d.Reason switch
        {
            ReasonDisabled => $"'{d.ProviderId}' is disabled",
            ReasonNotEnabledForWorkspace => $"'{d.ProviderId}' is not enabled for this workspace",
            ReasonUnsupportedEndpoint => $"'{d.ProviderId}' does not serve {endpoint.WireName()}",
            _ => $"'{d.ProviderId}' does not serve this model",
        });
        return what + ": " + string.Join("; ", drops) + ".";
    }
}
