namespace Wharf.Core.Ports;

/// <summary>
/// An upstream (or Wharf's own <c>local</c> store) that files can be kept on and requests routed to.
/// One implementation per provider; no provider-specific branch lives outside its adapter.
/// </summary>
public interface IProvider
{
    /// <summary>The id users name it by (<c>local</c>, <c>openai</c>, <c>groq</c>, ...).</summary>
    string Id { get; }
}

/// <summary>The providers this node knows, by id.</summary>
public interface IProviderRegistry
{
    bool TryGet(string id, out IProvider provider);
}
