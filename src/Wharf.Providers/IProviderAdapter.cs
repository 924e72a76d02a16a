using Microsoft.Extensions.Logging;
using Wharf.Core.Providers;

namespace Wharf.Providers;

/// <summary>
/// One provider type (<c>openai</c>, <c>azure</c>, <c>mock</c>): checks its entries of the configuration and makes
/// its <see cref="IProvider"/>. Adding a provider type is one folder holding one of these and its adapter.
/// </summary>
internal interface IProviderAdapter
{
    /// <summary>The value of <c>Type</c> that selects this adapter.</summary>
    string Type { get; }

    /// <summary>The problems of one entry, each naming its key (<paramref name="key"/> is <c>Wharf:Providers:&lt;id&gt;</c>).</summary>
    IEnumerable<string> Validate(string key, ProviderOptions options);

    IProvider Create(ProviderContext context);
}

/// <summary>
/// What an adapter gets to make its provider: the entry, the services every adapter may use, and the longest line of a
/// batch's input file (<c>Wharf:Batches:MaxLineBytes</c>: an adapter that reads the input reads it with that bound).
/// </summary>
internal sealed record ProviderContext(string Id, ProviderOptions Options, TimeProvider Time, ILoggerFactory Logging, int MaxBatchLineBytes)
{
    public TimeSpan Timeout => TimeSpan.FromSeconds(Options.TimeoutSeconds);
}
