using System.Collections.Frozen;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Core.Batches;
using Wharf.Core.Providers;
using Wharf.Providers.Decorators;
using Wharf.Providers.Http;
using Wharf.Providers.Local;

namespace Wharf.Providers;

/// <summary>
/// The providers of this node, by id: <c>local</c> first, then <c>Wharf:Providers</c> in the configuration's order.
/// Built once at start from the validated options, each adapter wrapped in the decorators that live outside it:
/// telemetry around the call, then the <c>MaxConcurrency</c> limit around that (so durations do not count waits).
/// Owns the providers' connection pools.
/// </summary>
internal sealed class ProviderRegistry : IProviderRegistry, IDisposable
{
    private readonly FrozenDictionary<string, RegisteredProvider> _byId;
    private readonly UpstreamHttpClients? _clients;

    private ProviderRegistry(IEnumerable<RegisteredProvider> providers)
    {
        All = [.. providers];
        _byId = All.ToFrozenDictionary(p => p.Id, StringComparer.Ordinal);
    }

    public ProviderRegistry(IOptions<ProvidersOptions> options, IEnumerable<IProviderAdapter> adapters, UpstreamHttpClients clients,
        ProviderTelemetry telemetry, TimeProvider time, ILoggerFactory logging, IOptions<BatchesOptions> batches)
        : this(Build(options.Value, adapters, telemetry, time, logging, batches.Value.MaxLineBytes))
    {
        _clients = clients;
    }

    public IReadOnlyList<RegisteredProvider> All { get; }

    public bool TryGet(string id, out RegisteredProvider provider) => _byId.TryGetValue(id, out provider!);

    private static IEnumerable<RegisteredProvider> Build(ProvidersOptions options, IEnumerable<IProviderAdapter> adapters, ProviderTelemetry telemetry,
        TimeProvider time, ILoggerFactory logging, int maxBatchLineBytes)
    {
        var byType = adapters.ToDictionary(a => a.Type, StringComparer.Ordinal);
        var logger = logging.CreateLogger("Wharf.Providers");
        yield return new RegisteredProvider(new LocalProvider(), Enabled: true, Models: null);
        foreach (var (id, entry) in options.Entries)
        {
            // The options were validated at start: the type is known.
            IProvider provider = byType[entry.Type!].Create(new ProviderContext(id, entry, time, logging, maxBatchLineBytes));
            provider = new TelemetryProvider(provider, telemetry, time, logger);
            if (entry.MaxConcurrency is { } max)
            {
                provider = new ConcurrencyLimitedProvider(provider, max);
            }
            var models = entry.Models is { Count: > 0 } names ? names.ToFrozenSet(StringComparer.Ordinal) : null;
            yield return new RegisteredProvider(provider, entry.Enabled, models);
        }
    }

    public void Dispose()
    {
        foreach (var provider in All)
        {
            (provider.Provider as IDisposable)?.Dispose();
        }
        _clients?.Dispose();
    }
}
