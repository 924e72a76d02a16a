using Yarp.ReverseProxy.Configuration;

// bench/proxy.sh's reference for the .NET stack's own cost of proxying: every request forwarded as it is (path,
// headers, body; the answer streamed back) to the one destination given as --Upstream, with no authentication,
// no parsing and no telemetry. Start it with --urls on loopback.
var builder = WebApplication.CreateBuilder(args);
string upstream = builder.Configuration["Upstream"] ?? throw new InvalidOperationException("--Upstream <base URL> is required.");
builder.Services.AddReverseProxy().LoadFromMemory(
    [new RouteConfig { RouteId = "all", ClusterId = "upstream", Match = new RouteMatch { Path = "{**path}" } }],
    [new ClusterConfig
    {
        ClusterId = "upstream",
        Destinations = new Dictionary<string, DestinationConfig> { ["upstream"] = new() { Address = upstream } },
    }]);

var app = builder.Build();
app.MapReverseProxy();
app.Run();
