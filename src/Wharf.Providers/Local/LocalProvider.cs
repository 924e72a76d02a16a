using Wharf.Core.Ports;

namespace Wharf.Providers.Local;

/// <summary>Wharf's own store: files kept only by Wharf. Always configured.</summary>
internal sealed class LocalProvider : IProvider
{
    public const string ProviderId = "local";

    public string Id => ProviderId;
}
