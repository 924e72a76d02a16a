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

        // Written as plain loops over the few candidates: this runs for every model request, and LINQ's iterators,
        // sets and closures were a fifth of what a proxied request allocated (docs/benchmarks.md).
        var candidates = new List<RegisteredProvider>(named.Count);
        int supportsEndpoint = 0;
        for (int i = 0; i < named.Count; i++)
        {
            string id = named[i];
            if (IndexOf(named, id, i) < i || !providers.TryGet(id, out var provider))
            {
                continue; // named twice (the first one counts), or not configured
            }
            candidates.Add(provider);
            if (provider.Provider.Capabilities.Contains(endpoint))
            {
                supportsEndpoint++;
            }
        }
        string[] routed = Ids(candidates);
        var stages = new FilterStage[4];

        candidates = Filter(stages, Stage.Enabled, candidates, endpoint, model, workspace, out _);
        string[] beforeWorkspace = candidates.Count == routed.Length ? routed : Ids(candidates);
        candidates = Filter(stages, Stage.Workspace, candidates, endpoint, model, workspace, out var notAllowed);
        candidates = Filter(stages, Stage.Endpoint, candidates, endpoint, model, workspace, out var unsupported);
        candidates = Filter(stages, Stage.Model, candidates, endpoint, model, workspace, out _);

        var diagnostics = new UpstreamDiagnostics
        {
            RoutingDiagnostics = new RoutingDiagnostics(stages),
            ProviderCandidateDiagnostics = new ProviderCandidateDiagnostics(
                TotalProviders: routed.Length,
                SupportsEndpointCount: supportsEndpoint,
                CandidateCount: candidates.Count,
                DroppedUnsupportedEndpoint: unsupported,
                DroppedMissingAdapter: []),
            ProviderEnablement = new ProviderEnablement(
                endpoint.WireName(),
                beforeWorkspace,
                notAllowed.Length == 0 ? beforeWorkspace : Without(beforeWorkspace, notAllowed),
                stages[1].DroppedProviders),
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

    private enum Stage
    {
        Enabled,
        Workspace,
        Endpoint,
        Model,
    }

    private static bool Keeps(Stage stage, RegisteredProvider provider, ProviderCapability endpoint, string model, Workspace workspace) => stage switch
    {
        Stage.Enabled => provider.Enabled || provider.Id == ProviderAccess.Local,
        Stage.Workspace => provider.IsUsableBy(workspace),
        Stage.Endpoint => provider.Provider.Capabilities.Contains(endpoint),
        _ => provider.Models is null || provider.Models.Contains(model),
    };

    private static readonly string[] StageNames = [StageEnabled, StageWorkspace, StageEndpoint, StageModel];

    private static readonly string[] StageReasons = [ReasonDisabled, ReasonNotEnabledForWorkspace, ReasonUnsupportedEndpoint, ReasonModelNotServed];

    /// <summary>The providers a stage keeps (the same list when it keeps them all), its record in <paramref name="stages"/>.</summary>
    private static List<RegisteredProvider> Filter(
        FilterStage[] stages, Stage stage, List<RegisteredProvider> before, ProviderCapability endpoint, string model, Workspace workspace,
        out string[] dropped)
    {
        int index = (int)stage;
        List<RegisteredProvider>? after = null;
        List<string>? droppedIds = null;
        for (int i = 0; i < before.Count; i++)
        {
            var provider = before[i];
            if (Keeps(stage, provider, endpoint, model, workspace))
            {
                after?.Add(provider);
                continue;
            }
            if (after is null)
            {
                after = new List<RegisteredProvider>(before.Count);
                for (int k = 0; k < i; k++)
                {
                    after.Add(before[k]);
                }
            }
            (droppedIds ??= []).Add(provider.Id);
        }
        dropped = droppedIds is null ? [] : [.. droppedIds];
        DroppedProvider[] droppedProviders = dropped.Length == 0 ? [] : new DroppedProvider[dropped.Length];
        for (int i = 0; i < dropped.Length; i++)
        {
            droppedProviders[i] = new DroppedProvider(dropped[i], StageReasons[index]);
        }
        after ??= before;
        stages[index] = new FilterStage(StageNames[index], before.Count, after.Count, droppedProviders);
        return after;
    }

    private static int IndexOf(IReadOnlyList<string> ids, string id, int limit)
    {
        for (int i = 0; i < limit; i++)
        {
            if (string.Equals(ids[i], id, StringComparison.Ordinal))
            {
                return i;
            }
        }
        return limit;
    }

    private static string[] Ids(List<RegisteredProvider> providers)
    {
        var ids = new string[providers.Count];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = providers[i].Id;
        }
        return ids;
    }

    private static string[] Without(string[] ids, string[] removed)
    {
        var kept = new List<string>(ids.Length);
        foreach (string id in ids)
        {
            if (Array.IndexOf(removed, id) < 0)
            {
                kept.Add(id);
            }
        }
        return [.. kept];
    }

    private static string NoCandidateMessage(ProviderCapability endpoint, string model, string[] routed, FilterStage[] stages)
    {
        string what = $"No provider can serve model '{Echo.Safe(model)}' on {endpoint.WireName()}";
        if (routed.Length == 0)
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
