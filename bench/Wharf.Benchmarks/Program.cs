using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Wharf.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Wharf.Benchmarks.IdBenchmarks).Assembly).Run(args);
