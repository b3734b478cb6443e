"""Chapter 5 on Ray: a (1+1)-ES proposes OFA sub-networks, K worker gangs fine-tune them, AUFROC decides.

From the bottom up:

- `config`: `FractureNASConfig` and its presets (smoke / default / thesis); `data`: the patch set.
- `jobs`: a training job (frozen `TrainingJob`) per search candidate or final-stage network, with
  the unit key that finds its result again.
- `workers`: `PatchFineTuner` actors; G of them in one placement group form a gang
  (`WorkerCluster`) training each job with data parallelism, through `cluster.lifecycle`.
- `pool`: `GangPool`, K gangs made on first use; a training whose gang dies is retried on another.
- `driver`: `CandidateSearch`, the ES driven by `search.driver.Driver` over the pool, checkpointed
  in the parent run after every tell.
- `final`, `report`: table 5.1's retraining, then the trajectory, figs. 5.1 / 5.2 and table 5.1.
- `nas`: `FractureNAS`, the whole run inside the sweep's parent run.
"""
