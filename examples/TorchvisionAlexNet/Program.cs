// Prints what the generator computed at compile time for this network.
System.Console.WriteLine(TorchvisionAlexNet.TorchvisionAlexNet.Model.ToSummary(batch: 128, threads: System.Environment.ProcessorCount));
