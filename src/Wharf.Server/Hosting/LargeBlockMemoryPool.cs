using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;

namespace Wharf.Server.Hosting;

/// <summary>
/// Gives Kestrel's socket transport <see cref="LargeBlockMemoryPool"/>s in place of its own pool of 4 KiB blocks
/// (registered as the <see cref="IMemoryPoolFactory{T}"/> service, which the transport asks for).
/// </summary>
internal sealed class LargeBlockMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool();
}

/// <summary>
/// Connection memory in 64 KiB blocks. The socket transport receives into one block at a time, so the block size is
/// the size of every receive: with Kestrel's 4 KiB blocks a 1 GiB request body takes 262,144 receives, each with its
/// pipe flush and scheduling, and the server read bodies at about half the speed of the loopback socket itself
/// (docs/benchmarks.md). Blocks are pinned arrays (the socket hands them to the kernel as they are); idle
/// connections hold none (the transport waits for data before it takes one), and at most
/// <see cref="MaxRetainedBlocks"/> free blocks are kept: the rest go back to the garbage collector, so a burst of
/// connections does not pin its memory for good.
/// </summary>
internal sealed class LargeBlockMemoryPool : MemoryPool<byte>
{
    public const int BlockSize = 64 * 1024;

    /// <summary>Free blocks kept for reuse (16 MiB).</summary>
    public const int MaxRetainedBlocks = 256;

    private readonly ConcurrentQueue<Block> _free = new();
    private int _retained;

    public override int MaxBufferSize => BlockSize;

    /// <summary>Free blocks held for reuse right now.</summary>
    internal int RetainedBlocks => Volatile.Read(ref _retained);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        if (_free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _retained);
        }
        else
        {
            block = new Block(this);
        }
        block.Rented = 1;
        return block;
    }

    protected override void Dispose(bool disposing) => _free.Clear();

    private void Return(Block block)
    {
        if (Interlocked.Increment(ref _retained) <= MaxRetainedBlocks)
        {
            _free.Enqueue(block);
        }
        else
        {
            Interlocked.Decrement(ref _retained);
        }
    }

    private sealed class Block(LargeBlockMemoryPool pool) : IMemoryOwner<byte>
    {
        // Pinned once for its lifetime, and marked so: handing it to a socket takes no pin of its own.
        private readonly Memory<byte> _memory = MemoryMarshal.CreateFromPinnedArray(
            GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true), 0, BlockSize);

        internal int Rented;

        public Memory<byte> Memory => _memory;

        public void Dispose()
        {
            // Returned once, however often it is disposed: a block queued twice would be handed to two owners.
            if (Interlocked.Exchange(ref Rented, 0) == 1)
            {
                pool.Return(this);
            }
        }
    }
}
