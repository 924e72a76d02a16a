using System.Collections.Frozen;
using Wharf.Core.Providers;

namespace Wharf.Providers;

/// <summary>The providers of this node, by id, in configuration order; built once at start.</summary>
internal sealed class ProviderRegistry : IProviderRegistry
{
    private readonly FrozenDictionary<string, RegisteredProvider> _byId;

    public ProviderRegistry(IEnumerable<RegisteredProvider> providers)
    {
        All = [.. providers];
        _byId = All.ToFrozenDictionary(p => p.Id, StringComparer.Ordinal);
    }

    public IReadOnlyList<RegisteredProvider> All { get; }

    public bool TryGet(string id, out RegisteredProvider provider) => _byId.TryGetValue(id, out provider!);
}
