using System.Buffers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Wharf.Server.Hosting;

namespace Wharf.Server.Tests;

/// <summary>
/// Kestrel's connections take their memory from <see cref="LargeBlockMemoryPool"/> (64 KiB receives: request bodies
/// read at twice the speed of 4 KiB ones), and the pool hands each block to one owner at a time and keeps a bounded
/// number of free blocks.
/// </summary>
public sealed class LargeBlockMemoryPoolTests
{
    [Fact]
    public async Task The_server_s_connections_use_the_large_block_pool()
    {
        var dataDir = Directory.CreateTempSubdirectory("wharf-pool-");
        try
        {
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions
            {
                Args = [$"--Wharf:DataDir={dataDir.FullName}", "--urls=http://127.0.0.1:0", "--Logging:LogLevel:Default=Warning"],
            });
            builder.AddWharf();
            await using var app = builder.Build();
            app.UseWharf();
            app.MapWharf();
            app.MapGet("/pool-of-this-connection", (HttpContext context) =>
                context.Features.Get<IMemoryPoolFeature>()?.MemoryPool is { } pool ? $"{pool.GetType().Name} {pool.MaxBufferSize}" : "none");
            await app.StartAsync();
            try
            {
                using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
                Assert.Equal($"{nameof(LargeBlockMemoryPool)} {64 * 1024}", await client.GetStringAsync("/pool-of-this-connection"));
            }
            finally
            {
                await app.StopAsync();
            }
        }
        finally
        {
            dataDir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Blocks_are_64_KiB_and_larger_ones_are_refused()
    {
        using var pool = new LargeBlockMemoryPool();
        Assert.Equal(LargeBlockMemoryPool.BlockSize, pool.MaxBufferSize);
        using var any = pool.Rent();
        using var small = pool.Rent(1);
        using var whole = pool.Rent(LargeBlockMemoryPool.BlockSize);
        Assert.All(new[] { any, small, whole }, block => Assert.Equal(64 * 1024, block.Memory.Length));
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(LargeBlockMemoryPool.BlockSize + 1));
    }

    [Fact]
    public void A_returned_block_is_reused_and_a_block_disposed_twice_goes_back_once()
    {
        using var pool = new LargeBlockMemoryPool();
        var first = pool.Rent();
        var memory = first.Memory;
        first.Dispose();
        first.Dispose();
        Assert.Equal(1, pool.RetainedBlocks);

        using var again = pool.Rent();
        using var other = pool.Rent();
        Assert.True(again.Memory.Span == memory.Span, "the returned block is handed out again");
        Assert.False(other.Memory.Span.Overlaps(memory.Span), "a block disposed twice went to two owners");
    }

    [Fact]
    public void At_most_the_retention_limit_of_free_blocks_is_kept()
    {
        using var pool = new LargeBlockMemoryPool();
        var rented = Enumerable.Range(0, LargeBlockMemoryPool.MaxRetainedBlocks + 40).Select(_ => pool.Rent()).ToList();
        Assert.Equal(0, pool.RetainedBlocks);
        rented.ForEach(block => block.Dispose());
        Assert.Equal(LargeBlockMemoryPool.MaxRetainedBlocks, pool.RetainedBlocks);

        var distinct = Enumerable.Range(0, 3).Select(_ => pool.Rent()).ToList();
        Assert.Equal(LargeBlockMemoryPool.MaxRetainedBlocks - 3, pool.RetainedBlocks);
        Assert.Equal(3, distinct.Select(block => block.Memory).Distinct().Count());
    }
}
