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
        // A service with several implementations (the batch executions) has each of them once.
        Assert.All(services.GroupBy(d => (d.ServiceType, d.ImplementationType)), group => Assert.Single(group));
        Assert.Equal(
            [typeof(Wharf.Core.Batches.GatewayBatchExecution), typeof(Wharf.Core.Batches.NativeBatchExecution)],
            services.Where(d => d.ServiceType == typeof(Wharf.Core.Batches.IBatchExecution)).Select(d => d.ImplementationType));
    }
}
