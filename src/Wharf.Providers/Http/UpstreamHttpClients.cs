namespace Wharf.Providers.Http;

/// <summary>
/// One pooled connection handler per upstream provider, owned here and disposed with the registry: connections
/// are recycled every few minutes (DNS changes are seen), no cookies, no redirects followed, no client-side
/// timeout (each provider's timeout is Wharf's, on the injected clock).
/// </summary>
internal sealed class UpstreamHttpClients : IDisposable
{
    private readonly List<HttpClient> _clients = [];

    public HttpClient Create()
    {
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
            ConnectTimeout = TimeSpan.FromSeconds(30),
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = System.Net.DecompressionMethods.None,
        };
        var client = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        lock (_clients)
        {
            _clients.Add(client);
        }
        return client;
    }

    public void Dispose()
    {
        lock (_clients)
        {
            foreach (var client in _clients)
            {
                client.Dispose();
            }
            _clients.Clear();
        }
    }
}
