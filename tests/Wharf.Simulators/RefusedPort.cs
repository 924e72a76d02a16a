using System.Net;
using System.Net.Sockets;

namespace Wharf.Simulators;

/// <summary>A loopback port nothing listens on: bound, noted, closed, so a connection to it is refused.</summary>
public static class RefusedPort
{
    public static int Get()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public static Uri Url(string path = "") => new($"http://127.0.0.1:{Get()}{path}");
}
