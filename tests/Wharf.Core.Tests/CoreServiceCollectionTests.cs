using Microsoft.Extensions.DependencyInjection;
using Wharf.Core.Files;

namespace Wharf.Core.Tests;

public sealed class CoreServiceCollectionTests
{
    [Fact]
    public void WhatTheHostRegisteredFirstIsKeptAndAddingTwiceRegistersOnce()
    {
        var services = new ServiceCollection();
        var clock = new FixedTimeProvider(DateTimeOffset.UnixEpoch);
        services.AddSingleton<TimeProvider>(clock);

        services.AddWharfCore().AddWharfCore();

        Assert.Same(clock, Assert.Single(services, d => d.ServiceType == typeof(TimeProvider)).ImplementationInstance);
        Assert.Single(services, d => d.ServiceType == typeof(FileService));
        Assert.All(services.GroupBy(d => d.ServiceType), group => Assert.Single(group));
    }
}
